-- wrk-post.lua -- POST a 1 KiB body on every request (http-wal benchmark),
-- and print the latency percentiles wrk's --latency omits (microseconds).
wrk.method = "POST"
wrk.body = string.rep("x", 1024)
wrk.headers["Content-Type"] = "application/octet-stream"

done = function(summary, latency, requests)
  io.write(string.format("paste-latency-us p50=%d p99=%d p999=%d\n",
    latency:percentile(50), latency:percentile(99), latency:percentile(99.9)))
end
