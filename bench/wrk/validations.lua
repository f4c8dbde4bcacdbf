-- POST /v1/validations with random valid keys and their registered instance URL.
-- Args: KEYS_FILE.
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "report.lua")
local reqs = {}
function init(args)
  for _, k in ipairs(read_keys(args[1])) do
    reqs[#reqs + 1] = wrk.format("POST", "/v1/validations", JSON,
      json_body({ { "registration_key", k.key }, { "instance_url", k.url } }))
  end
  math.randomseed(os.time() * 13 + (tid or 0))
end
function request()
  return reqs[math.random(#reqs)]
end
