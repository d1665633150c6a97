#!/bin/sh
# The postgres image runs this once, as the superuser, when it creates the database (mounted in
# /docker-entrypoint-initdb.d). The passwords are compose secrets; they reach psql through its
# environment, never its command line.
set -eu
PORPOISE_MIGRATE_PASSWORD="$(cat /run/secrets/db_migrate_password)"
PORPOISE_APP_PASSWORD="$(cat /run/secrets/db_app_password)"
export PORPOISE_MIGRATE_PASSWORD PORPOISE_APP_PASSWORD
psql --no-psqlrc --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" --file /etc/porpoise/porpoise-roles.sql
