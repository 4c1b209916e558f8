-- Sessions: every access token names one (its `sid` claim). Logging out revokes it;
-- logging out everywhere, or changing the password, revokes a user's others. Every API
-- process reads the revocations at least every 250 ms and refuses their tokens from then on
-- (crates/api/src/auth/sessions.rs). Tokens issued before this table existed name no
-- session and are refused: their holders log in again.
CREATE TABLE sessions
(
    session_id uuid        PRIMARY KEY,
    user_id    uuid        NOT NULL REFERENCES users (user_id),
    created_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz
);
-- Logging out everywhere: a user's live sessions.
CREATE INDEX sessions_live ON sessions (user_id) WHERE revoked_at IS NULL;
-- Each process's poll: what was revoked since it last looked.
CREATE INDEX sessions_revoked ON sessions (revoked_at) WHERE revoked_at IS NOT NULL;
