-- Each connection waits `pace_ms` between a response and its next request: a bounded rate
-- (8 connections x 1000 / pace_ms requests/s at most) instead of as fast as the server answers.
local pace_ms = tonumber(os.getenv("PACE_MS") or "4")
function delay()
  return pace_ms
end
