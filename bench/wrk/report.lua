-- Shared by the bench scripts: one machine-readable line per wrk run (latencies in µs).
-- `stale` counts answers a script expects to be >= 400 (a thread's global `stale`, see
-- soak.lua); they are reported apart and not as errors.
local all_threads = {}
function done(summary, latency, requests)
  local e = summary.errors
  local stale = 0
  for _, t in ipairs(all_threads) do stale = stale + (t:get("stale") or 0) end
  io.write(string.format(
    "BENCH requests=%d duration_us=%d p50_us=%d p99_us=%d max_us=%d " ..
    "connect=%d read=%d write=%d status=%d timeout=%d stale=%d\n",
    summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), latency.max,
    e.connect, e.read, e.write, e.status - stale, e.timeout, stale))
end

-- Numbers the threads 0, 1, ... (a global `tid` in each thread).
local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
  all_threads[#all_threads + 1] = thread
end

-- Reads "key url uid" lines.
function read_keys(file)
  local out = {}
  for line in io.lines(file) do
    local key, url, uid = line:match("^(%S+) (%S+) (%S+)")
    if key then out[#out + 1] = { key = key, url = url, uid = uid } end
  end
  assert(#out > 0, "no keys in " .. file)
  return out
end

function json_body(fields)
  local parts = {}
  for _, kv in ipairs(fields) do
    parts[#parts + 1] = string.format('"%s":"%s"', kv[1], kv[2])
  end
  return "{" .. table.concat(parts, ",") .. "}"
end

JSON = { ["Content-Type"] = "application/json" }
