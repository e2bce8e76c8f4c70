-- wrk script: POST /api/v1/turns into 8 users' default sessions per wrk thread, distinct content.
-- wrk -t2 -c16 -d10s -s benches/ingest/turns.lua http://127.0.0.1:18765
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
    '{"role":"user","content":"turn %d of thread %d: the user mentions they like green tea"}',
    counter, id)
  local path = string.format("/api/v1/turns?user_id=bench-%d-%d", id, counter % 8)
  return wrk.format(nil, path, nil, body)
end

function response(status, headers, body)
  if status ~= 201 and status ~= 200 then
    io.stderr:write("unexpected status " .. status .. ": " .. body .. "\n")
  end
end
