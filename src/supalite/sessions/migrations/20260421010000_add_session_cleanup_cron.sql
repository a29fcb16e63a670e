-- Lifecycle sweep, as mcp-ts ships it: expired pending sessions every 5 minutes, active ones
-- untouched for 30 days once a day.  Credentials go with their session (ON DELETE CASCADE).
-- Runs on pg_cron, or on supalite's pg_cron-compatible `cron` schema.
CREATE EXTENSION IF NOT EXISTS pg_cron;

SELECT cron.schedule(
    'cleanup-transient-sessions',
    '*/5 * * * *',
    $$DELETE FROM public.mcp_sessions WHERE expires_at IS NOT NULL AND expires_at < now() AND status <> 'active';$$
);

SELECT cron.schedule(
    'cleanup-dormant-sessions',
    '0 0 * * *',
    $$DELETE FROM public.mcp_sessions WHERE status = 'active' AND updated_at < now() - interval '30 days';$$
);

COMMENT ON EXTENSION pg_cron IS 'Automated Session Lifecycle Management.';
