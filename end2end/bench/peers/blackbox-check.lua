-- wrk script for blackbox_exporter's /probe: it answers 200 whether the probe succeeded or not,
-- so count the answers that report "probe_success 1".
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) ok = 0; failed = 0 end
function response(status, headers, body)
  if status == 200 and body:find("\nprobe_success 1", 1, true) then ok = ok + 1 else failed = failed + 1 end
end
function done(summary, latency, requests)
  local o, f = 0, 0
  for _, t in ipairs(threads) do o = o + t:get("ok"); f = f + t:get("failed") end
  io.write(string.format("probe_ok=%d probe_failed=%d ok_per_s=%.1f\n", o, f, o / (summary.duration / 1e6)))
end
