-- A fleet: keys KEY-0 ... KEY-<N-1>, key i bound to instance https://glpi-<i>.fleet.example/glpi
-- with UID uid-<i> (the fixture of bench/compare.sh; the naive baseline seeds the same key
-- strings). Each request takes the next key in turn, round robin over all N (thread t of T
-- takes t, t+T, t+2T, ...), so a key cache smaller than N never answers from memory. Requests
-- are built as they go: nothing grows with N.
-- Args: ROUTE N THREADS [FIRST [START]]: keys FIRST ... FIRST+N-1 (FIRST 0 by default), the
-- walk starting at the START-th of them (0 by default; bench/compare.sh starts the measured run
-- half-way round from its warm-up's start, so the warm-up leaves nothing in a cache smaller
-- than N for the measured run to hit). ROUTE one of
--   info        GET /api/registration/info (key and UID headers: a bound instance)
--   validations POST /v1/validations (key and instance URL)
--   base-info   GET /info of the naive baseline (key header)
--   base-validate  POST /validate of the naive baseline (key)
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "report.lua")
local n, step, i, first, start
local builders = {
  ["info"] = function(k)
    return wrk.format("GET", "/api/registration/info",
      { ["X-Registration-Key"] = "KEY-" .. k, ["X-Glpi-Network-Uid"] = "uid-" .. k })
  end,
  ["validations"] = function(k)
    return wrk.format("POST", "/v1/validations", JSON, '{"registration_key":"KEY-' .. k ..
      '","instance_url":"https://glpi-' .. k .. '.fleet.example/glpi"}')
  end,
  ["base-info"] = function(k)
    return wrk.format("GET", "/info", { ["X-Registration-Key"] = "KEY-" .. k })
  end,
  ["base-validate"] = function(k)
    return wrk.format("POST", "/validate", JSON, '{"registration_key":"KEY-' .. k .. '"}')
  end,
}
local build
function init(args)
  build = assert(builders[args[1]], "unknown route " .. tostring(args[1]))
  n = assert(tonumber(args[2]), "N")
  step = tonumber(args[3]) or 1
  first = tonumber(args[4]) or 0
  start = tonumber(args[5]) or 0
  i = (tid or 0) % n
end
function request()
  local r = build(first + (start + i) % n)
  i = (i + step) % n
  return r
end
