-- Scenario scripts for wrk, selected by the driver with the SCENARIO marker below.
-- Each section is cut out by bench/run.py and followed by wrk_report.lua.

--@@ register
-- Unique emails: thread number and a counter (wrk threads have separate Lua states).
local counter = 0
local thread_no = 0
local threads = {}
setup = function(thread)
  thread:set("thread_no", #threads + 1)
  table.insert(threads, thread)
end
init = function(args)
  thread_no = tonumber(wrk.thread:get("thread_no")) or 0
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end
request = function()
  counter = counter + 1
  local body = string.format(
    '{"email": "bench-%s-%d-%d@example.com", "password": "correct horse battery staple"}',
    os.getenv("BENCH_RUN") or "0", thread_no, counter)
  return wrk.format(nil, nil, nil, body)
end

--@@ refresh
-- Refresh-token chains: every response carries the next token; a token is used once.
local tokens = {}
init = function(args)
  for token in string.gmatch(os.getenv("BENCH_REFRESH_TOKENS") or "", "[^,]+") do
    table.insert(tokens, token)
  end
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end
request = function()
  local token = table.remove(tokens)
  if token == nil then
    return wrk.format("GET", "/health/live")
  end
  return wrk.format(nil, nil, nil, '{"refresh_token": "' .. token .. '"}')
end
response = function(status, headers, body)
  local token = string.match(body, '"refresh_token":"([^"]+)"')
  if token then
    table.insert(tokens, token)
  end
end
