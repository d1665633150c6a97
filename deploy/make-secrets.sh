#!/bin/sh
# Makes the secrets of deploy/docker-compose.yml, once, as files under deploy/secrets/ (git-ignored;
# a file that exists is kept):
#
#   sudo sh deploy/make-secrets.sh
#
# Each file is readable only by the container user that needs it: Porpoise's (uid 10001, the
# image's `porpoise` user) or Postgres's (uid 999 in the postgres image). Compose mounts the
# files as they are, so that ownership is what keeps a task on a worker (another user) away from
# them. Without root the files are left to you (the script says so).
set -eu
dir="$(cd "$(dirname "$0")" && pwd)/secrets"
umask 077
mkdir -p "$dir"
chmod 700 "$dir"

random() { od -An -N24 -tx1 /dev/urandom | tr -d ' \n'; }
# put NAME OWNER VALUE
put() {
  if [ ! -s "$dir/$1" ]; then printf '%s\n' "$3" >"$dir/$1"; fi
  chmod 400 "$dir/$1"
  if [ "$(id -u)" -eq 0 ]; then chown "$2:$2" "$dir/$1"; else owner_left=1; fi
}
owner_left=0
read_or() { if [ -s "$dir/$1" ]; then head -n1 "$dir/$1"; else random; fi; }

migrate_password="$(read_or db_migrate_password)"
app_password="$(read_or db_app_password)"
put postgres_password 999 "$(read_or postgres_password)"
put db_migrate_password 999 "$migrate_password"
put db_app_password 999 "$app_password"
put migrate_database_url 10001 "postgres://porpoise_migrate:$migrate_password@postgres:5432/porpoise"
put app_database_url 10001 "postgres://porpoise_app:$app_password@postgres:5432/porpoise"
put cluster_secret 10001 "$(read_or cluster_secret)"
put admin_token 10001 "$(read_or admin_token)"
put zookeeper_auth 10001 "porpoise:$(read_or zookeeper_auth | sed 's/^porpoise://')"

echo "secrets in $dir"
if [ "$owner_left" -eq 1 ]; then
  echo "not root: give the files to the containers' users (chown 999 postgres_password db_*_password;"
  echo "chown 10001 the others), or compose cannot read them" >&2
fi
