-- MCP session store: connection metadata (mcp_sessions) and OAuth credentials (mcp_credentials),
-- the schema of mcp-ts 2.4–2.5, so either SDK reads rows the other wrote.
-- Shipped by supalite (`supalite sessions init`); never edited once released: changes ship as
-- new migration files.

CREATE TABLE IF NOT EXISTS public.mcp_sessions (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    session_id TEXT NOT NULL UNIQUE,
    user_id TEXT NOT NULL, -- the application user's id (auth.uid()::text for Supabase Auth users)
    server_id TEXT,
    server_name TEXT,
    server_url TEXT NOT NULL,
    transport_type TEXT NOT NULL,
    callback_url TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ, -- pending sessions only; active ones go dormant by updated_at
    status TEXT NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'active')),
    headers JSONB, -- encrypted as a JSON string "enc:1:…" when STORAGE_ENCRYPTION_KEY is set
    auth_url TEXT,
    CONSTRAINT mcp_sessions_user_session_unique UNIQUE (user_id, session_id)
);

-- Runtime credentials, kept apart from connection metadata.
CREATE TABLE IF NOT EXISTS public.mcp_credentials (
    id UUID PRIMARY KEY DEFAULT gen_random_uuid(),
    session_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    client_information JSONB, -- encrypted
    tokens JSONB, -- encrypted
    code_verifier TEXT, -- encrypted
    client_id TEXT,
    oauth_state JSONB,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT mcp_credentials_session_fk FOREIGN KEY (user_id, session_id)
        REFERENCES public.mcp_sessions (user_id, session_id) ON DELETE CASCADE,
    CONSTRAINT mcp_credentials_user_session_unique UNIQUE (user_id, session_id)
);

CREATE INDEX IF NOT EXISTS idx_mcp_sessions_user_id ON public.mcp_sessions (user_id);
CREATE INDEX IF NOT EXISTS idx_mcp_sessions_expires_at ON public.mcp_sessions (expires_at);
CREATE INDEX IF NOT EXISTS idx_mcp_credentials_user_session
    ON public.mcp_credentials (user_id, session_id);

-- updated_at follows every write, unless the writer set it itself (a store with its own clock).
CREATE OR REPLACE FUNCTION public.set_current_timestamp_updated_at() RETURNS TRIGGER AS $$
BEGIN
    IF NEW.updated_at IS NOT DISTINCT FROM OLD.updated_at THEN
        NEW.updated_at = now();
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;

DROP TRIGGER IF EXISTS trg_mcp_sessions_updated_at ON public.mcp_sessions;
CREATE TRIGGER trg_mcp_sessions_updated_at BEFORE UPDATE ON public.mcp_sessions
    FOR EACH ROW EXECUTE FUNCTION public.set_current_timestamp_updated_at();

DROP TRIGGER IF EXISTS trg_mcp_credentials_updated_at ON public.mcp_credentials;
CREATE TRIGGER trg_mcp_credentials_updated_at BEFORE UPDATE ON public.mcp_credentials
    FOR EACH ROW EXECUTE FUNCTION public.set_current_timestamp_updated_at();

ALTER TABLE public.mcp_sessions ENABLE ROW LEVEL SECURITY;
ALTER TABLE public.mcp_credentials ENABLE ROW LEVEL SECURITY;
