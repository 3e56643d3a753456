-- The people on the floor: each person's language, and preferences that store only what
-- the person chose (so the defaults, which admins may change, reach everything else).
-- depends: 0006_revoked_tokens

-- What a person reads the app, their notifications and pushes in. Until their first
-- login (`first_login_at` NULL) it is the default, French; that login takes the
-- browser's language when it is one of these.
ALTER TABLE users
    ADD COLUMN language text NOT NULL DEFAULT 'fr' CHECK (language IN ('fr', 'en')),
    ADD COLUMN first_login_at timestamptz;

-- Saving any preference used to store every type's switches, the untouched defaults
-- included, which would pin those defaults forever. Keep only the switches that differ
-- from the defaults of the time (push: the critical types, priority changes and
-- messages; in-app: always on); an entry left empty goes.
UPDATE notification_preferences p SET types = coalesce((
    SELECT jsonb_object_agg(choice.kind, choice.kept) FROM (
        SELECT e.key AS kind, (
            SELECT jsonb_object_agg(f.key, f.value) FROM jsonb_each(e.value) f
            WHERE NOT (f.key = 'inapp' AND f.value = 'true'::jsonb)
              AND NOT (f.key = 'push' AND f.value = to_jsonb(e.key = ANY (ARRAY[
                  'ticket_assigned', 'ticket_reassigned', 'ticket_overdue',
                  'machine_breakdown', 'ticket_priority_changed', 'new_message'])))
        ) AS kept
        FROM jsonb_each(p.types) e WHERE jsonb_typeof(e.value) = 'object'
    ) choice WHERE choice.kept IS NOT NULL
), '{}'::jsonb)
WHERE jsonb_typeof(p.types) = 'object';
