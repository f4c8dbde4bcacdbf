<?php
// GLPI conformance harness: replays what a GLPI 10.0/11/12 instance sends to GLPI Network services,
// on the same PHP HTTP stacks GLPI uses (libcurl for registration, Guzzle 7 for the marketplace),
// and parses the answers the way GLPI does (docs: ../shared/docs/glpi-network-protocol.md).
//
// Usage: php glpi.php BASE_URL STANDARD_KEY BASIC_KEY
// (the server has the plugins of compat-catalogue.json imported, for the compatibility checks)
// Prints one line per check and a closing "N passed, M failed" line; exits 1 on any failure.

require_once '/usr/share/php/GuzzleHttp/autoload.php';

[$_, $base, $standardKey, $basicKey] = $argv + [null, null, null, null];
if (!$base || !$standardKey || !$basicKey) {
    fwrite(STDERR, "usage: php glpi.php BASE_URL STANDARD_KEY BASIC_KEY\n");
    exit(2);
}
$base = rtrim($base, '/');
$passed = 0;
$failed = 0;

function check(string $what, bool $ok, string $detail = ''): void
{
    global $passed, $failed;
    if ($ok) {
        $passed++;
        echo "ok   $what\n";
    } else {
        $failed++;
        echo "FAIL $what" . ($detail !== '' ? " -- $detail" : '') . "\n";
    }
}

/** Toolbox::callCurl as GLPI does it: GET, raw header lines, status ignored, 5 s connect timeout. */
function glpi_curl(string $url, array $headerLines): string
{
    $ch = curl_init($url);
    curl_setopt_array($ch, [
        CURLOPT_RETURNTRANSFER => true,
        CURLOPT_CONNECTTIMEOUT => 5,
        CURLOPT_TIMEOUT => 30, // GLPI has none; the harness must not hang
        CURLOPT_HTTPHEADER => $headerLines,
        CURLOPT_USERAGENT => 'GLPI/10.0.18',
    ]);
    $content = curl_exec($ch);
    curl_close($ch);
    return $content === false ? '' : $content;
}

function info_headers(string $key, string $uid, string $lang = 'en'): array
{
    return [
        'Accept:application/json',
        "Accept-Language: $lang",
        'Content-Type:application/json',
        'User-Agent:GLPI/10.0.18 (installation-mode:TARBALL)',
        "X-Registration-Key:$key",
        "X-Glpi-Network-Uid:$uid",
    ];
}

// 1. Availability (GLPINetwork::isServicesAvailable): a non-empty body on both paths.
foreach (['/api/registration/', '/api/ping'] as $path) {
    $body = glpi_curl($base . $path, []);
    check("availability $path answers a non-empty body", strlen($body) > 0 && $body !== '0');
}

// 2. Registration info (GLPINetwork::getRegistrationInformations).
$uid = substr(str_repeat(bin2hex(random_bytes(20)), 1), 0, 40);
$info = json_decode(glpi_curl("$base/api/registration/info", info_headers($standardKey, $uid)), true);
check('info decodes to an array with is_valid', is_array($info) && array_key_exists('is_valid', $info));
check('info is valid for the standard key', ($info['is_valid'] ?? null) === true, json_encode($info));
check('info has owner.name', is_string($info['owner']['name'] ?? null));
check('info subscription.is_running is true', ($info['subscription']['is_running'] ?? null) === true);
check('info subscription.offer_reference is standard', ($info['subscription']['offer_reference'] ?? null) === 'standard');
check('info subscription.title is a string', is_string($info['subscription']['title'] ?? null));
check('info validation_message is a string', is_string($info['validation_message'] ?? null));
$fr = json_decode(glpi_curl("$base/api/registration/info", info_headers($standardKey, $uid, 'fr')), true);
check('info speaks French', ($fr['validation_message'] ?? '') === "La clé d'enregistrement est valide.", $fr['validation_message'] ?? '');
$other = json_decode(glpi_curl("$base/api/registration/info", info_headers($standardKey, str_repeat('x', 40))), true);
check('the same key from another instance is invalid', ($other['is_valid'] ?? null) === false
    && array_key_exists('owner', $other) && array_key_exists('subscription', $other));
$bad = json_decode(glpi_curl("$base/api/registration/info", info_headers('not-a-key', $uid)), true);
check('an unknown key is invalid with a message', ($bad['is_valid'] ?? null) === false && is_string($bad['validation_message'] ?? null));
$basicUid = str_repeat('b', 40);
$basicInfo = json_decode(glpi_curl("$base/api/registration/info", info_headers($basicKey, $basicUid)), true);
check('info is valid for the basic key', ($basicInfo['is_valid'] ?? null) === true);

// 3. Offers (GLPINetwork::getOffers): decoded as objects, then array_column.
$offersRaw = json_decode(glpi_curl("$base/api/registration/offers", ['Accept:application/json', 'Accept-Language: en']));
check('offers is a JSON array', is_array($offersRaw));
$offers = array_column($offersRaw ?? [], 'title', 'offer_reference');
check('offers map references to titles', ($offers['standard'] ?? null) === 'GLPI Network Standard' && isset($offers['basic'], $offers['advanced']));

// 4. Marketplace (Glpi\Marketplace\Api\Plugins): Guzzle with base_uri and the X-Range loop.
// `$agent` is GLPINetwork::getGlpiUserAgent(); null leaves Guzzle's own agent (names no GLPI).
function marketplace(string $base, string $prefix, string $key, string $uid,
    ?string $agent = 'GLPI/11.0.1 (installation-mode:TARBALL)'): GuzzleHttp\Client
{
    $headers = [
        'Accept' => 'application/json',
        'X-Registration-Key' => $key,
        'X-Glpi-Network-Uid' => $uid,
    ];
    if ($agent !== null) {
        $headers['User-Agent'] = $agent;
    }
    return new GuzzleHttp\Client([
        'base_uri' => "$base$prefix",
        'connect_timeout' => 5,
        'timeout' => 30,
        'headers' => $headers,
    ]);
}

function all_plugins(GuzzleHttp\Client $client, string $endpoint = 'plugins'): array
{
    $plugins = [];
    $page = 0;
    $size = 200;
    while (true) {
        $response = $client->request('GET', $endpoint, ['headers' => ['X-Range' => ($page * $size) . '-' . (($page + 1) * $size - 1)]]);
        $items = json_decode((string) $response->getBody(), true);
        if (!is_array($items) || count($items) === 0) {
            break;
        }
        foreach ($items as $p) {
            $plugins[$p['key']] = $p;
        }
        if (++$page > 50) {
            throw new RuntimeException('pagination never ended');
        }
    }
    foreach ($plugins as &$p) {
        usort($p['versions'], fn($a, $b) => version_compare($a['num'], $b['num']));
        $last = end($p['versions']);
        $p['installation_url'] = $last['download_url'] ?? null;
        $p['version'] = $last['num'] ?? null;
    }
    return $plugins;
}

/** Controller::requiresHigherOffer (10.0.8+/11). */
function requires_higher_offer(array $plugin, array $info): bool
{
    if (empty($plugin['required_offers'])) {
        return false;
    }
    return !(($info['subscription']['is_running'] ?? false)
        && in_array($info['subscription']['offer_reference'] ?? '', $plugin['required_offers'], true));
}

foreach (['/api/marketplace/', '/api/glpi-plugins/'] as $prefix) {
    $client = marketplace($base, $prefix, $standardKey, $uid);
    $plugins = all_plugins($client);
    check("$prefix plugins: the X-Range loop ends and lists plugins", count($plugins) >= 3, implode(',', array_keys($plugins)));
    $strings = true;
    foreach ($plugins as $p) {
        foreach (['key', 'name', 'logo_url', 'homepage_url', 'issues_url', 'readme_url', 'changelog_url'] as $f) {
            $strings = $strings && is_string($p[$f] ?? null);
        }
        $strings = $strings && is_array($p['versions']) && is_array($p['descriptions']);
    }
    check("$prefix plugins: string fields are strings, versions and descriptions arrays", $strings);
    $free = array_filter($plugins, fn($p) => $p['required_offers'] === null);
    $exclusive = array_filter($plugins, fn($p) => !empty($p['required_offers']));
    check("$prefix plugins: free ones have required_offers null", count($free) >= 1);
    check("$prefix plugins: exclusive ones list offers", count($exclusive) >= 1);
    $reports = $plugins['reports'] ?? null;
    check("$prefix the standard key is not asked for a higher offer", $reports && !requires_higher_offer($reports, $info));
    check("$prefix the exclusive plugin has an installation URL ending in its archive name",
        $reports && str_ends_with($reports['installation_url'] ?? '', '/reports-' . $reports['version'] . '.tar.gz'));
    $tags = json_decode((string) $client->request('GET', 'tags/top', ['headers' => ['X-Lang' => 'en-GB']])->getBody(), true);
    check("$prefix tags/top is a list of {key, tag}", is_array($tags) && isset($tags[0]['key'], $tags[0]['tag']));
    $tagged = all_plugins($client, 'tags/' . $tags[0]['key'] . '/plugin');
    check("$prefix tags/{key}/plugin pages too", count($tagged) >= 1);

    $basicPlugins = all_plugins(marketplace($base, $prefix, $basicKey, $basicUid));
    check("$prefix the basic key is asked for a higher offer for the exclusive plugin",
        requires_higher_offer($basicPlugins['reports'], $basicInfo) && $basicPlugins['reports']['versions'] === []);
}

// 4b. Version compatibility (protocol §4.4, §15): the server sends each GLPI only the versions
// compatible with the version in its User-Agent; GLPI takes the highest as `version`, and a
// plugin with no version is "not available for your GLPI version" (Plugins::isAvailable).
function nums(array $plugin): array
{
    return array_column($plugin['versions'], 'num');
}

$agents = [
    'GLPI 10.0.18' => ['GLPI/10.0.18 (installation-mode:TARBALL)', ['0.9.0', '1.0.0', '1.5.0'], ['1.0.0']],
    'GLPI 10.0.2' => ['GLPI/10.0.2 (installation-mode:TARBALL)', ['0.9.0', '1.0.0'], ['1.0.0']],
    'GLPI 11.0.1' => ['GLPI/11.0.1 (installation-mode:TARBALL)', ['0.9.0', '1.5.0', '2.0.0'], ['1.0.0', '1.1.0-beta1']],
    'GLPI 11.0.0-rc1' => ['GLPI/11.0.0-rc1 (installation-mode:GIT)', ['0.9.0', '1.5.0', '2.0.0'], ['1.0.0', '1.1.0-beta1']],
    'GLPI 12.0.0' => ['GLPI/12.0.0 (installation-mode:TARBALL)', ['0.9.0', '3.0.0'], ['1.0.0', '1.1.0-beta1']],
    'no GLPI agent' => [null, ['0.9.0', '1.0.0', '1.5.0', '2.0.0', '3.0.0'], ['1.0.0', '1.1.0-beta1']],
];
foreach (['/api/marketplace/', '/api/glpi-plugins/'] as $prefix) {
    foreach ($agents as $who => [$agent, $compatdemo, $hello]) {
        $client = marketplace($base, $prefix, $standardKey, $uid, $agent);
        foreach (['plugins', 'tags/compat/plugin'] as $endpoint) {
            $plugins = all_plugins($client, $endpoint);
            $what = "$prefix$endpoint as $who";
            $demo = $plugins['compatdemo'] ?? null;
            check("$what: compatdemo lists " . implode(', ', $compatdemo),
                $demo !== null && nums($demo) === $compatdemo, json_encode($demo ? nums($demo) : null));
            check("$what: compatdemo's version is " . end($compatdemo),
                $demo !== null && $demo['version'] === end($compatdemo)
                && str_ends_with($demo['installation_url'] ?? '', '/compatdemo-' . end($compatdemo) . '.tar.gz'));
            $legacy = $plugins['legacyonly'] ?? null;
            $legacyWant = $agent === null ? ['1.0.0'] : [];
            check("$what: legacyonly is listed with versions " . json_encode($legacyWant),
                $legacy !== null && nums($legacy) === $legacyWant,
                json_encode($legacy['versions'] ?? null));
            if ($agent !== null) {
                check("$what: legacyonly is not available (versions: [], no version)",
                    $legacy !== null && $legacy['versions'] === [] && $legacy['version'] === null);
            }
            if ($endpoint === 'plugins') {
                check("$what: the demo hello lists " . implode(', ', $hello), nums($plugins['hello']) === $hello);
            }
        }
    }
}

// 5. Download and extract an archive as Controller::downloadPlugin does.
$client = marketplace($base, '/api/marketplace/', $standardKey, $uid);
$plugins = all_plugins($client);
$reports = $plugins['reports'];
$tmp = sys_get_temp_dir() . '/glpi-conformance-' . getmypid();
@mkdir($tmp);
$dest = $tmp . '/' . basename(parse_url($reports['installation_url'], PHP_URL_PATH));
$response = $client->request('GET', $reports['installation_url'], ['sink' => $dest, 'headers' => ['Accept' => '*/*']]);
check('the archive downloads with status 200', $response->getStatusCode() === 200 && filesize($dest) > 0);
$phar = new PharData($dest);
$phar->extractTo($tmp . '/marketplace', null, true);
$setup = $tmp . '/marketplace/reports/setup.php';
check('the archive holds reports/setup.php', is_file($setup));
require $setup;
check('setup.php defines plugin_version_reports()', function_exists('plugin_version_reports'));
$meta = plugin_version_reports();
check('plugin_version_reports() reports the listed version', ($meta['version'] ?? null) === $reports['version']);
$counter = $client->request('GET', 'plugin/reports/download/' . $meta['version'], ['allow_redirects' => false]);
check('the download counter answers', $counter->getStatusCode() < 400);

try {
    marketplace($base, '/api/marketplace/', $basicKey, $basicUid)->request('GET', $reports['installation_url']);
    check('the basic key cannot download the exclusive archive', false);
} catch (GuzzleHttp\Exception\ClientException $e) {
    $body = json_decode((string) $e->getResponse()->getBody(), true);
    check('the basic key cannot download the exclusive archive', $e->getResponse()->getStatusCode() === 403
        && ($body['error']['code'] ?? '') === 'offer_required');
}

echo "\n$passed passed, $failed failed\n";
exit($failed === 0 ? 0 : 1);
