-- Mixed traffic for bench/soak.sh: 50% POST /v1/validations and 30% GET /api/registration/info
-- on random bound keys, 15% churn (each thread cycles through its slice of other keys,
-- registering a key and releasing it with DELETE /v1/registrations on its next turn), 5%
-- GET /healthz. Args: HOT_FILE CHURN_FILE THREADS.
--
-- A key's register and release go out on whichever connection is free, and wrk can build a
-- request it then drops (a connection re-opened before the write), so now and then a release
-- reaches the server for a key that is no longer bound: the server rightly answers 404 (seen in
-- its log as DELETE 204 then DELETE 404 for the same key). Only DELETE can answer 404 in this
-- mix (every key exists), so 404s are counted apart as `stale` releases, not as errors; any
-- other answer >= 400 is still an error.
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "report.lua")
local info, validate, reg, rel, bound = {}, {}, {}, {}, {}
local pos = 0
local health
stale = 0
function response(status)
  if status == 404 then stale = stale + 1 end
end
function init(args)
  for _, k in ipairs(read_keys(args[1])) do
    info[#info + 1] = wrk.format("GET", "/api/registration/info",
      { ["X-Registration-Key"] = k.key, ["X-Glpi-Network-Uid"] = k.uid })
    validate[#validate + 1] = wrk.format("POST", "/v1/validations", JSON,
      json_body({ { "registration_key", k.key }, { "instance_url", k.url } }))
  end
  local n = tonumber(args[3])
  for i, k in ipairs(read_keys(args[2])) do
    if (i - 1) % n == tid then
      reg[#reg + 1] = wrk.format("POST", "/v1/registrations", JSON, json_body({
        { "registration_key", k.key }, { "instance_url", k.url }, { "instance_uid", k.uid } }))
      rel[#rel + 1] = wrk.format("DELETE", "/v1/registrations", JSON,
        json_body({ { "registration_key", k.key }, { "instance_url", k.url } }))
      bound[#bound + 1] = false
    end
  end
  health = wrk.format("GET", "/healthz")
  math.randomseed(os.time() * 17 + (tid or 0))
end
function request()
  local r = math.random(100)
  if r <= 50 then
    return validate[math.random(#validate)]
  elseif r <= 80 then
    return info[math.random(#info)]
  elseif r <= 95 then
    pos = pos % #reg + 1
    bound[pos] = not bound[pos]
    return bound[pos] and reg[pos] or rel[pos]
  end
  return health
end
