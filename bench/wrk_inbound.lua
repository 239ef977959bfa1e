-- wrk script for bench/ingest.py: POST MO_JSON_2 webhooks with uuid-like messageIds, random
-- numbers and a realistic mix of texts (keywords, near misses, chatter that differs each time),
-- receivedAt the current second, as real traffic has. Arguments: results per request (default 1).
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

-- Roughly what a programme receives: most texts are chatter, no two alike; a few are keywords.
local keywords = {"STOP", "START", "HELP", "stop please", "DISCOUNT", "YES", "stpo", "Unsubscribe", "info"}
local words = {"hi", "when", "is", "my", "order", "coming", "thanks", "great", "deal", "can", "I", "change",
               "address", "where", "store", "open", "today", "price", "ok", "no", "ship", "to", "Zurich"}

local function text()
  if math.random() < 0.3 then
    return keywords[math.random(#keywords)]
  end
  local t = {}
  for i = 1, math.random(2, 12) do t[i] = words[math.random(#words)] end
  return table.concat(t, " ") .. " " .. math.random(0, 99999)
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
      '{"messageId":"%s-%d-%s","from":"4179%07d","to":"447491163443","text":"%s",' ..
      '"receivedAt":"%s"}', hex(16), tid, counter, math.random(0, 9999999), text(),
      os.date("!%Y-%m-%dT%H:%M:%S.000+0000"))
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
