-- wrk script: each request presents the next key of keys.txt (one per
-- line), round robin, so that no key reaches its limits during the run.
-- WRK_METHOD=POST with WRK_BODY sends a JSON body (a chat completion).
-- At the end, prints how many answers were errors (status >= 400): a
-- run with any is void.

local keys = {}
for line in io.lines(os.getenv("WRK_KEYS") or "keys.txt") do
  keys[#keys + 1] = line
end
local method = os.getenv("WRK_METHOD") or "GET"
local body = os.getenv("WRK_BODY")
local next_key = 0

function setup(thread)
  thread:set("offset", math.random(#keys))
end

function init(args)
  next_key = offset or 0
end

function request()
  next_key = next_key % #keys + 1
  local headers = { ["Authorization"] = "Bearer " .. keys[next_key] }
  if body then
    headers["Content-Type"] = "application/json"
  end
  return wrk.format(method, nil, headers, body)
end

function done(summary, latency, requests)
  local errors = summary.errors.status
  io.write(string.format("error answers: %d\n", errors))
end
