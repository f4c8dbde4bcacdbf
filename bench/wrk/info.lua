-- GET /api/registration/info with random valid keys, each with its own stable UID (already
-- bound, so every call is the idempotent path). Args: KEYS_FILE.
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "report.lua")
local reqs = {}
function init(args)
  for _, k in ipairs(read_keys(args[1])) do
    reqs[#reqs + 1] = wrk.format("GET", "/api/registration/info",
      { ["X-Registration-Key"] = k.key, ["X-Glpi-Network-Uid"] = k.uid })
  end
  math.randomseed(os.time() * 7 + (tid or 0))
end
function request()
  return reqs[math.random(#reqs)]
end
