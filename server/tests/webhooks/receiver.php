<?php
// A webhook receiver for the tests, independent of the server's code: it checks every request's
// Standard Webhooks signature with PHP's own hash_hmac, answers with the status in status.txt
// (200 when absent; 401 for a bad signature) and appends one JSON line per request to log.jsonl.
// Its directory is the document root's parent passed as RECEIVER_DIR.
$dir = getenv('RECEIVER_DIR');
$body = file_get_contents('php://input');
$id = $_SERVER['HTTP_WEBHOOK_ID'] ?? '';
$ts = $_SERVER['HTTP_WEBHOOK_TIMESTAMP'] ?? '';
$sigs = $_SERVER['HTTP_WEBHOOK_SIGNATURE'] ?? '';
$secret = trim(@file_get_contents("$dir/secret.txt") ?: '');
$valid = false;
if (str_starts_with($secret, 'whsec_') && ctype_digit($ts)) {
    $key = base64_decode(substr($secret, 6), true);
    $expected = base64_encode(hash_hmac('sha256', "$id.$ts.$body", $key, true));
    foreach (explode(' ', $sigs) as $sig) {
        [$version, $value] = array_pad(explode(',', $sig, 2), 2, '');
        if ($version === 'v1' && hash_equals($expected, $value)) {
            $valid = true;
        }
    }
}
$fresh = ctype_digit($ts) && abs(time() - (int)$ts) <= 300;
$status = (int)(trim(@file_get_contents("$dir/status.txt") ?: '') ?: 200);
if (!$valid || !$fresh) {
    $status = 401;
}
$line = json_encode([
    'method' => $_SERVER['REQUEST_METHOD'],
    'id' => $id,
    'timestamp' => $ts,
    'valid' => $valid,
    'fresh' => $fresh,
    'content_type' => $_SERVER['CONTENT_TYPE'] ?? '',
    'answered' => $status,
    'received' => microtime(true),
    'body' => json_decode($body, true),
]);
file_put_contents("$dir/log.jsonl", $line . "\n", FILE_APPEND | LOCK_EX);
http_response_code($status);
header('Content-Type: text/plain');
echo "ok\n";
