-- TUS `creation-defer-length` (Supabase's @tus stores advertise it): an upload created with
-- `Upload-Defer-Length: 1` has no length until a PATCH declares it, so the column may be null.
alter table _supalite.storage_tus_uploads alter column upload_length drop not null;
