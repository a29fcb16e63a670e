-- Row-level security for the MCP session tables: a user signed in through Supabase Auth
-- reads and changes only the rows whose user_id is their own id.  The server side uses the
-- service-role (secret) key, which bypasses RLS.  Needs Supabase's `auth` schema and roles.

CREATE POLICY "Users can view their own sessions" ON public.mcp_sessions
    FOR SELECT TO authenticated USING (auth.uid()::text = user_id);
CREATE POLICY "Users can view their own credentials" ON public.mcp_credentials
    FOR SELECT TO authenticated USING (auth.uid()::text = user_id);

CREATE POLICY "Users can insert their own sessions" ON public.mcp_sessions
    FOR INSERT TO authenticated WITH CHECK (auth.uid()::text = user_id);
CREATE POLICY "Users can insert their own credentials" ON public.mcp_credentials
    FOR INSERT TO authenticated WITH CHECK (auth.uid()::text = user_id);

CREATE POLICY "Users can update their own sessions" ON public.mcp_sessions
    FOR UPDATE TO authenticated
    USING (auth.uid()::text = user_id) WITH CHECK (auth.uid()::text = user_id);
CREATE POLICY "Users can update their own credentials" ON public.mcp_credentials
    FOR UPDATE TO authenticated
    USING (auth.uid()::text = user_id) WITH CHECK (auth.uid()::text = user_id);

CREATE POLICY "Users can delete their own sessions" ON public.mcp_sessions
    FOR DELETE TO authenticated USING (auth.uid()::text = user_id);
CREATE POLICY "Users can delete their own credentials" ON public.mcp_credentials
    FOR DELETE TO authenticated USING (auth.uid()::text = user_id);
