-- Accounts are plain state, not event-sourced: no business rule depends on their history,
-- and the marketplace aggregates refer to users only by id.
CREATE TABLE users
(
    user_id       uuid        PRIMARY KEY,
    username      text        NOT NULL UNIQUE,
    password_hash text        NOT NULL,
    display_name  text,
    role          text        NOT NULL DEFAULT 'user' CHECK (role IN ('user', 'admin')),
    created_at    timestamptz NOT NULL DEFAULT now()
);
