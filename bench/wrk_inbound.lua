-- wrk script for bench/ingest.py: POST MO_JSON_2 webhooks with uuid-like messageIds and random
-- numbers, as real traffic has. Arguments: results per request (default 1).
local counter = 0
local threads = {}

function setup(thread)
  thread:set("tid", #threads + 1)
  table.insert(threads, thread)
end

function init(args)
  size = tonumber(args[1] or "1")
  math.randomseed(os.time() * 1000 + tid)
  wrk.method = "POST"
  wrk.headers["Content-Type"] = "application/json"
end

local function hex(n)
  local t = {}
  for i = 1, n do t[i] = string.format("%x", math.random(0, 15)) end
  return table.concat(t)
end

request = function()
  local results = {}
  for i = 1, size do
    counter = counter + 1
    results[i] = string.format(
      '{"messageId":"%s-%d-%s","from":"4179%07d","to":"447491163443","text":"hello there",' ..
      '"receivedAt":"2026-11-26T10:00:00.000+0000"}', hex(16), tid, counter, math.random(0, 9999999))
  end
  local body = '{"results":[' .. table.concat(results, ",") .. '],"messageCount":' .. size ..
    ',"pendingMessageCount":0}'
  return wrk.format(nil, "/infobip/inbound", nil, body)
end

-- One JSON line for bench/ingest.py to read.
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"non_2xx":%d,"socket_errors":%d,"p50_us":%d,"p99_us":%d}\n',
    summary.requests, summary.duration, e.status, e.connect + e.read + e.write + e.timeout,
    latency:percentile(50), latency:percentile(99)))
end
