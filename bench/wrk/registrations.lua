-- POST /v1/registrations of new instances: each thread walks its own slice of a pool of
-- fresh keys, one new key (URL, UID) per request. A thread that runs out stops (the run then
-- under-reports; run.sh warns). Args: KEYS_FILE THREADS.
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "report.lua")
local reqs, pos = {}, 0
function init(args)
  local n = tonumber(args[2])
  for i, k in ipairs(read_keys(args[1])) do
    if (i - 1) % n == tid then
      reqs[#reqs + 1] = wrk.format("POST", "/v1/registrations", JSON, json_body({
        { "registration_key", k.key }, { "instance_url", k.url }, { "instance_uid", k.uid } }))
    end
  end
end
function request()
  pos = pos + 1
  if pos > #reqs then
    io.stderr:write("POOL EXHAUSTED\n")
    wrk.thread:stop()
    pos = 1
  end
  return reqs[pos]
end
