#!/usr/bin/env bash
# Creates Carrot's database and its two roles, once: the PostgreSQL image runs every file
# of /docker-entrypoint-initdb.d as the superuser when it initialises an empty data
# directory. Mounted by deploy/k8s/postgres/postgres.yaml (through a ConfigMap) and by
# docker-compose.yml, so both set the database up the same way.
#
#   carrot      owns the database and its schema. `carrot migrate` (with
#               CARROT_APP_ROLE=carrot_app), `carrot replay` and `carrot saga recover`
#               connect as it. Not a superuser.
#   carrot_app  what `carrot serve` connects as: `carrot migrate` grants it the rights on
#               rows the service needs, and nothing on the schema.
#
# The passwords come from the environment; psql quotes them (:'name'), so any character
# is safe. To change one later: ALTER ROLE carrot_app PASSWORD '...' as the superuser.

# A subshell: the image sources this file instead of running it when it is not
# executable, and these shell options must not leak into its entrypoint.
create_roles() (
    set -euo pipefail
    : "${DB_OWNER_PASSWORD:?DB_OWNER_PASSWORD (the password of the role carrot) is not set}"
    : "${DB_APP_PASSWORD:?DB_APP_PASSWORD (the password of the role carrot_app) is not set}"
    psql -v ON_ERROR_STOP=1 --no-psqlrc --no-password \
        --username "${POSTGRES_USER:-postgres}" --dbname postgres \
        --set owner_password="$DB_OWNER_PASSWORD" --set app_password="$DB_APP_PASSWORD" <<'SQL'
CREATE ROLE carrot LOGIN PASSWORD :'owner_password';
CREATE ROLE carrot_app LOGIN PASSWORD :'app_password';
CREATE DATABASE carrot OWNER carrot;
-- Only these two roles (and superusers) may connect to it.
REVOKE ALL ON DATABASE carrot FROM PUBLIC;
GRANT CONNECT ON DATABASE carrot TO carrot_app;
-- carrot_log_horizon_age_seconds reads the open transactions of every session in
-- pg_stat_activity; a plain role sees only its own sessions' there.
GRANT pg_read_all_stats TO carrot_app;
SQL
)
create_roles
# A streaming replica (docker-compose.yml's postgres-replica) connects as the superuser
# for replication; the image's own pg_hba.conf admits ordinary connections only.
echo "host replication postgres all scram-sha-256" >>"$PGDATA/pg_hba.conf"
