#!/usr/bin/env bash
# Run once by the postgres image's entrypoint, only when the data volume is empty
# (/docker-entrypoint-initdb.d). One server, two databases, each owned by its own login role:
#   datashare  the platform's catalog, published versions, audit (migrated by `datashare db upgrade`)
#   airflow    Airflow's metadata (migrated by `airflow db migrate`)
# Neither role is a superuser, and neither can connect to the other's database.
# Passwords come from docker/.env through docker/compose.yaml; changing them later needs ALTER ROLE.
set -eo pipefail

: "${DATASHARE_DB_PASSWORD:?DATASHARE_DB_PASSWORD is not set (docker/.env)}"
: "${AIRFLOW_DB_PASSWORD:?AIRFLOW_DB_PASSWORD is not set (docker/.env)}"

# psql variables (:'name') quote the passwords as SQL literals.
psql -v ON_ERROR_STOP=1 --no-psqlrc \
    --username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-postgres}" \
    --set datashare_password="$DATASHARE_DB_PASSWORD" \
    --set airflow_password="$AIRFLOW_DB_PASSWORD" <<'SQL'
CREATE ROLE datashare LOGIN PASSWORD :'datashare_password';
CREATE DATABASE datashare OWNER datashare ENCODING 'UTF8' TEMPLATE template0;
REVOKE ALL ON DATABASE datashare FROM PUBLIC;

CREATE ROLE airflow LOGIN PASSWORD :'airflow_password';
CREATE DATABASE airflow OWNER airflow ENCODING 'UTF8' TEMPLATE template0;
REVOKE ALL ON DATABASE airflow FROM PUBLIC;
SQL
