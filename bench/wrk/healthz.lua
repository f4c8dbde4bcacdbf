-- GET /healthz (the ceiling of the stack), or with the argument keep-path, a plain GET of the
-- URL's own path (run.sh uses it for /readyz).
dofile(debug.getinfo(1, "S").source:match("^@(.*/)") .. "report.lua")
local req
function init(args)
  req = wrk.format("GET", args[1] == "keep-path" and wrk.path or "/healthz")
end
function request()
  return req
end
