-- No query reads usage events by (user, metric, period): counters are kept in usage_counters,
-- and `tollgate usage verify` recounts from a scan. The index only cost a write for every
-- event.
DROP INDEX usage_events_counter;
