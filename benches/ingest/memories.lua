-- wrk script: POST /api/v1/memories with distinct content per request.
-- wrk -t2 -c16 -d10s -s benches/ingest/memories.lua http://127.0.0.1:18765
local counter = 0
local threads = {}

function setup(thread)
  thread:set("id", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

function request()
  counter = counter + 1
  local body = string.format(
    '{"content":"fact %d from writer %d: the user keeps a notebook of item %d","user_id":"bench-%d"}',
    counter, id, counter * 7919 % 100003, counter % 16)
  return wrk.format(nil, "/api/v1/memories", nil, body)
end

function response(status, headers, body)
  if status ~= 201 and status ~= 200 then
    io.stderr:write("unexpected status " .. status .. ": " .. body .. "\n")
  end
end
