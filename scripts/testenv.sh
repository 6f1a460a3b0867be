#!/usr/bin/env bash
# testenv.sh brings up the services the tests use and prints, on stdout, the environment
# that points the tests at them, as export lines:
#
#	eval "$(scripts/testenv.sh)"
#
# Everything else it says goes to stderr. It is safe to run any number of times and takes a
# few tens of milliseconds when everything is already up.
#
# PostgreSQL: a CAESIUM_TEST_POSTGRES_URL already in the environment that accepts a login is
# used as is. Otherwise the local cluster on 127.0.0.1:5432 is used, and on a fresh Debian
# machine (as root) it is installed, created, configured and started: trust for loopback TCP
# logins, max_connections >= 200 (one database per test), durability settings untouched so
# benchmarks stay honest. Failing to get PostgreSQL is an error.
#
# Docker: `docker info` must work for CAESIUM_TEST_DOCKER=1 to be exported. Without Docker it
# warns (the tests that run steps skip), and fails when CI=true. The Docker tests build their
# image from Debian's busybox-static, which is installed (as git and gnupg are) when absent.
set -euo pipefail

# The export lines are the only thing on stdout; every command's chatter goes to stderr.
exec 3>&1 1>&2

readonly PG_HOST=127.0.0.1
readonly PG_PORT=5432
readonly MIN_CONNECTIONS=200
readonly START_TIMEOUT=30
readonly HBA_BEGIN='# BEGIN caesium scripts/testenv.sh: trust loopback TCP logins for the tests'
readonly HBA_END='# END caesium scripts/testenv.sh'
readonly DROPIN_NAME=caesium-testenv.conf
WROTE=false

log() { printf 'testenv: %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}
have() { command -v "$1" >/dev/null 2>&1; }

# pg_url builds the admin URL the tests use to create one database per test.
pg_url() { printf 'postgres://postgres@%s:%s/postgres?sslmode=disable' "$PG_HOST" "$1"; }

# redact hides a password in a URL before it is printed.
redact() { sed -E 's#(//[^:/@]*):[^@]*@#\1:xxxxx@#' <<<"$1"; }

# as_root runs a command as root, through sudo without a prompt when we are not root. It
# closes our stdout (fd 3) and lock (fd 9) for the command: a server it starts would hold them
# open, hanging the caller's $(...) and keeping the lock taken for as long as it runs.
as_root() {
	if [[ $EUID -eq 0 ]]; then
		"$@" 3>&- 9>&-
	elif have sudo; then
		sudo -n "$@" 3>&- 9>&-
	else
		die "need root (or sudo) to run: $*"
	fi
}

# pg_query prints the result of one SQL statement, unaligned, never prompting for a password.
pg_query() { PGCONNECT_TIMEOUT=5 psql "$1" -X -A -t -q -w -v ON_ERROR_STOP=1 -c "$2"; }

pg_ready() { have pg_isready && pg_isready -q -h "$PG_HOST" -p "$1" -t 2; }

pg_max_connections() { pg_query "$1" 'show max_connections' 2>/dev/null; }

# pg_check_settings warns about settings that would make tests fail or benchmarks lie.
pg_check_settings() {
	local url=$1 n settings
	n=$(pg_max_connections "$url") || return 0
	if ((n < MIN_CONNECTIONS)); then
		log "warning: $(redact "$url") has max_connections=$n; tests that run in parallel want $MIN_CONNECTIONS"
	fi
	settings=$(pg_query "$url" "select current_setting('fsync') || ' ' || current_setting('synchronous_commit')" 2>/dev/null) || return 0
	if [[ $settings != 'on on' ]]; then
		log "warning: $(redact "$url") runs with fsync/synchronous_commit = $settings; benchmark figures will not be honest"
	fi
}

# pg_newest_version prints the newest PostgreSQL major version whose server is installed.
pg_newest_version() {
	local bin
	for bin in /usr/lib/postgresql/*/bin/postgres; do
		[[ -x $bin ]] && basename "$(dirname "$(dirname "$bin")")"
	done | sort -V | tail -n 1
}

pg_install() {
	if have pg_ctlcluster && have pg_lsclusters && have psql && [[ -n $(pg_newest_version) ]]; then
		return 0
	fi
	have apt-get || die "PostgreSQL is not installed and there is no apt-get to install it; set CAESIUM_TEST_POSTGRES_URL"
	log "installing PostgreSQL with apt-get"
	as_root apt-get update -q
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql
	[[ -n $(pg_newest_version) ]] || die "apt-get installed postgresql but no server binary is in /usr/lib/postgresql"
}

# pg_cluster prints "version name port status" of the cluster that listens on PG_PORT, or
# failing that of the newest cluster, or nothing when there is none.
pg_cluster() {
	pg_lsclusters -h 2>/dev/null | sort -k1,1V | awk -v port="$PG_PORT" '
		{ last = $1 " " $2 " " $3 " " $4 }
		$3 == port && !found { found = last }
		END { if (found != "") print found; else if (last != "") print last }'
}

# pg_hba_render prints pg_hba.conf with our trust block placed before the first host line,
# dropping an earlier copy of the block, so the output is the same however often it runs.
pg_hba_render() {
	awk -v begin="$HBA_BEGIN" -v end="$HBA_END" '
		BEGIN {
			block = begin "\n" \
				"host    all             all             127.0.0.1/32            trust\n" \
				"host    all             all             ::1/128                 trust\n" \
				end
		}
		$0 == begin { skipping = 1; next }
		skipping { if ($0 == end) skipping = 0; next }
		!placed && /^[ \t]*host/ { print block; placed = 1 }
		{ print }
		END { if (!placed) print block }'
}

# sync_file makes file $1 hold $2 (and a final newline), writing only when it differs. It
# keeps the owner and mode of a file that exists, gives a new one the owner of $3, and sets
# WROTE to whether it wrote.
sync_file() {
	local file=$1 content=$2 owner_of=$3 current='' existed=false
	WROTE=false
	if as_root test -e "$file"; then
		existed=true
		current=$(as_root cat "$file")
	fi
	[[ $current == "$content" ]] && return 0
	as_root tee "$file" >/dev/null <<<"$content"
	$existed || as_root chown --reference="$owner_of" "$file"
	WROTE=true
}

# pg_local brings up the local cluster and sets PG_URL.
pg_local() {
	pg_install

	local version name port status
	read -r version name port status <<<"$(pg_cluster)"
	if [[ -z $version ]]; then
		version=$(pg_newest_version)
		log "creating PostgreSQL $version cluster main"
		as_root pg_createcluster --locale C.UTF-8 "$version" main
		read -r version name port status <<<"$(pg_cluster)"
		[[ -n $version ]] || die "pg_createcluster $version main made no cluster"
	fi
	local conf="/etc/postgresql/$version/$name"
	local url
	url=$(pg_url "$port")

	local changed=false hba
	hba=$(as_root cat "$conf/pg_hba.conf")
	sync_file "$conf/pg_hba.conf" "$(pg_hba_render <<<"$hba")" "$conf/pg_hba.conf"
	if $WROTE; then
		log "trusting loopback TCP logins in $conf/pg_hba.conf"
		changed=true
	fi

	# A drop-in in conf.d (read after postgresql.conf) raises max_connections without
	# editing the packaged file; a higher value in postgresql.conf is kept.
	local base want dropin="$conf/conf.d/$DROPIN_NAME"
	base=$(pg_conftool -s "$version" "$name" show max_connections 2>/dev/null) || base=0
	[[ $base =~ ^[0-9]+$ ]] || base=0
	want=$((base > MIN_CONNECTIONS ? base : MIN_CONNECTIONS))
	as_root mkdir -p "$conf/conf.d"
	sync_file "$dropin" "$(printf '%s\n%s' \
		'# Written by caesium scripts/testenv.sh: the tests open one database each, in parallel.' \
		"max_connections = $want")" "$conf/postgresql.conf"
	if $WROTE; then
		log "setting max_connections = $want in $dropin"
		changed=true
	fi

	if [[ $status == online* ]]; then
		local n
		n=$(pg_max_connections "$url") || n=0
		if $changed || ((n < MIN_CONNECTIONS)); then
			as_root pg_ctlcluster "$version" "$name" reload
		fi
		# After a reload the server flags settings that only a restart applies.
		if ((n < MIN_CONNECTIONS)) && n=$(pg_max_connections "$url") && ((n < MIN_CONNECTIONS)) &&
			[[ $(pg_query "$url" "select pending_restart from pg_settings where name = 'max_connections'") == t ]]; then
			log "restarting PostgreSQL $version $name to raise max_connections from $n (open sessions are cut)"
			as_root pg_ctlcluster "$version" "$name" restart
		fi
	else
		log "starting PostgreSQL $version $name"
		if ! as_root pg_ctlcluster "$version" "$name" start; then
			as_root tail -n 20 "/var/log/postgresql/postgresql-$version-$name.log" >&2 || true
			die "pg_ctlcluster $version $name start failed"
		fi
	fi

	local deadline=$((SECONDS + START_TIMEOUT))
	until pg_ready "$port"; do
		((SECONDS < deadline)) || die "PostgreSQL on $PG_HOST:$port is not ready after ${START_TIMEOUT}s"
		sleep 0.2
	done
	psql "$url" -X -w -q -c 'select 1' >/dev/null || die "cannot log in with $url; check $conf/pg_hba.conf"
	pg_check_settings "$url"
	PG_URL=$url
}

ensure_postgres() {
	local given=${CAESIUM_TEST_POSTGRES_URL:-}
	local local_url
	local_url=$(pg_url "$PG_PORT")

	if [[ -n $given ]]; then
		if ! have psql; then
			log "warning: psql is missing, so CAESIUM_TEST_POSTGRES_URL is used unchecked"
			PG_URL=$given
			return 0
		fi
		if pg_query "$given" 'select 1' >/dev/null 2>&1; then
			pg_check_settings "$given"
			PG_URL=$given
			return 0
		fi
		[[ $given == "$local_url" ]] || die "CAESIUM_TEST_POSTGRES_URL=$(redact "$given") does not accept a login"
	fi

	# The quick path: the local server is up, takes our login and is configured.
	local n
	if pg_ready "$PG_PORT" && n=$(pg_max_connections "$local_url") && ((n >= MIN_CONNECTIONS)); then
		PG_URL=$local_url
		return 0
	fi

	# Two runs at once (parallel make, several shells) must not edit or start things together.
	if have flock; then
		exec 9>"${TMPDIR:-/tmp}/caesium-testenv.lock"
		flock -w 120 9 || die "another scripts/testenv.sh holds ${TMPDIR:-/tmp}/caesium-testenv.lock"
	fi
	pg_local
}

ensure_docker() {
	local out
	if ! have docker; then
		out='docker: command not found'
	elif out=$(timeout 20 docker info 2>&1 >/dev/null); then
		DOCKER_OK=1
		return 0
	fi
	log "warning: Docker is not usable; the tests that need it will be skipped (${out##*$'\n'})"
	if [[ ${CI:-} == true ]]; then
		die "CI=true, but docker info fails: the executor's tests need the Docker Engine"
	fi
}

# busybox_static says whether /bin/busybox is Debian's statically linked one (without dpkg:
# whether /bin/busybox exists). The Docker tests import it into an otherwise empty image, where
# the dynamically linked busybox of the `busybox` package would not run.
busybox_static() {
	if have dpkg-query; then
		[[ $(dpkg-query -W -f='${Status}' busybox-static 2>/dev/null) == 'install ok installed' ]]
	else
		[[ -x /bin/busybox ]]
	fi
}

# ensure_tools installs the programs the tests drive for real: git (servers and fixture
# repositories), gpg with its agent (signed commits), ssh-keygen (SSH-signed commits) and a
# static busybox (the image the Docker tests run, as no registry is at hand).
ensure_tools() {
	local missing=()
	have git || missing+=(git)
	{ have gpg && have gpg-agent && have gpgconf; } || missing+=(gnupg)
	have ssh-keygen || missing+=(openssh-client)
	busybox_static || missing+=(busybox-static)
	((${#missing[@]} == 0)) && return 0
	have apt-get || die "missing ${missing[*]} and no apt-get to install them"
	log "installing ${missing[*]} with apt-get"
	as_root apt-get update -q
	as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
}

PG_URL=
DOCKER_OK=
ensure_tools
ensure_postgres
ensure_docker

printf "export CAESIUM_TEST_POSTGRES_URL='%s'\n" "${PG_URL//\'/\'\\\'\'}" >&3
if [[ -n $DOCKER_OK ]]; then
	printf 'export CAESIUM_TEST_DOCKER=1\n' >&3
fi
