#!/bin/sh
# Shape a network interface for link experiments: rate, delay, jitter, loss, contact windows.
#
#   shape.sh apply --dev IFACE --rate RATE [--delay D] [--jitter J] [--loss PCT] [--burst B]
#   shape.sh show  --dev IFACE
#   shape.sh clear --dev IFACE
#   shape.sh windows --dev IFACE --up SECONDS --down SECONDS   (link up/down schedule, foreground)
#   shape.sh hold     (containers: apply from LINK_* environment variables, keep running,
#                      clear on stop)
#
# RATE like 8mbit, 500kbit, 1gbit (or bps); D and J like 40ms; PCT like 0.5 (percent).
# netem is used where the kernel has it (rate, delay, jitter, loss); otherwise tbf shapes the
# rate alone, and a line on stderr says that delay/jitter/loss are not applied.
set -eu
PATH="$PATH:/usr/sbin:/sbin"  # tc lives there; minimal images leave it off PATH

die() { echo "shape.sh: $*" >&2; exit 2; }
say() { echo "shape.sh: $*" >&2; }

check_rate() { echo "$1" | grep -Eq '^[0-9]+(\.[0-9]+)?(bit|kbit|mbit|gbit|bps|kbps|mbps)$' \
  || die "bad rate '$1' (like 8mbit, 500kbit)"; }
check_time() { echo "$1" | grep -Eq '^[0-9]+(\.[0-9]+)?(us|ms|s)$' \
  || die "bad $2 '$1' (like 40ms)"; }
check_pct() { echo "$1" | grep -Eq '^([0-9]|[1-9][0-9])(\.[0-9]+)?$|^100$' \
  || die "bad loss '$1' (a percentage, 0 to 100)"; }
check_secs() { echo "$1" | grep -Eq '^[0-9]+(\.[0-9]+)?$' && [ "$1" != 0 ] \
  || die "bad $2 '$1' (seconds > 0)"; }

has_netem() {
  # Try netem on a throwaway dummy device; the kernel module may be missing.
  ip link add tfprobe0 type dummy 2>/dev/null || return 1
  if tc qdisc add dev tfprobe0 root netem delay 1ms 2>/dev/null; then r=0; else r=1; fi
  ip link del tfprobe0 2>/dev/null || true
  return $r
}

# The tbf burst must hold at least one MTU-sized packet and about 10 ms of traffic.
tbf_burst() {
  num=$(echo "$1" | sed -E 's/[a-z]+$//'); unit=$(echo "$1" | sed -E 's/^[0-9.]+//')
  case "$unit" in
    bit) f=1 ;; kbit) f=1000 ;; mbit) f=1000000 ;; gbit) f=1000000000 ;;
    bps) f=8 ;; kbps) f=8000 ;; mbps) f=8000000 ;; *) f=1 ;;
  esac
  awk -v n="$num" -v f="$f" 'BEGIN { b = n * f / 8 / 100; if (b < 3000) b = 3000; printf "%d", b }'
}

apply() {
  dev=""; rate=""; delay=""; jitter=""; loss=""; burst=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --dev) dev="$2"; shift 2 ;;
      --rate) rate="$2"; shift 2 ;;
      --delay) delay="$2"; shift 2 ;;
      --jitter) jitter="$2"; shift 2 ;;
      --loss) loss="$2"; shift 2 ;;
      --burst) burst="$2"; shift 2 ;;
      *) die "unknown option '$1'" ;;
    esac
  done
  [ -n "$dev" ] || die "--dev is required"
  [ -n "$rate" ] || die "--rate is required"
  check_rate "$rate"
  [ -z "$delay" ] || check_time "$delay" delay
  [ -z "$jitter" ] || check_time "$jitter" jitter
  [ -z "$loss" ] || check_pct "$loss"
  [ -z "$jitter" ] || [ -n "$delay" ] || die "--jitter needs --delay"
  ip link show "$dev" >/dev/null 2>&1 || die "no interface '$dev'"
  tc qdisc del dev "$dev" root 2>/dev/null || true
  if has_netem; then
    args="rate $rate"
    [ -z "$delay" ] || args="$args delay $delay ${jitter:-}"
    [ -z "$loss" ] || args="$args loss $loss%"
    # shellcheck disable=SC2086
    tc qdisc add dev "$dev" root netem $args
    say "netem on $dev: $args"
  else
    tc qdisc add dev "$dev" root tbf rate "$rate" burst "${burst:-$(tbf_burst "$rate")}" \
      latency 200ms
    msg="tbf on $dev: rate $rate (netem unavailable in this kernel"
    if [ -n "$delay$loss" ]; then msg="$msg: delay/jitter/loss NOT applied)"; else msg="$msg)"; fi
    say "$msg"
  fi
}

windows() {
  dev=""; up=""; down=""
  while [ $# -gt 0 ]; do
    case "$1" in
      --dev) dev="$2"; shift 2 ;;
      --up) up="$2"; shift 2 ;;
      --down) down="$2"; shift 2 ;;
      *) die "unknown option '$1'" ;;
    esac
  done
  [ -n "$dev" ] || die "--dev is required"
  check_secs "${up:-}" "--up"; check_secs "${down:-}" "--down"
  ip link show "$dev" >/dev/null 2>&1 || die "no interface '$dev'"
  trap 'ip link set "$dev" up; exit 0' INT TERM
  while true; do
    ip link set "$dev" up; say "contact window open on $dev for ${up}s"; sleep "$up"
    ip link set "$dev" down; say "contact window closed on $dev for ${down}s"; sleep "$down"
  done
}

cmd="${1:-}"; [ $# -gt 0 ] && shift
case "$cmd" in
  apply) apply "$@" ;;
  show)
    [ "${1:-}" = "--dev" ] && [ -n "${2:-}" ] || die "usage: shape.sh show --dev IFACE"
    tc qdisc show dev "$2" ;;
  clear)
    [ "${1:-}" = "--dev" ] && [ -n "${2:-}" ] || die "usage: shape.sh clear --dev IFACE"
    tc qdisc del dev "$2" root 2>/dev/null || true; say "cleared $2" ;;
  windows) windows "$@" ;;
  hold)
    dev="${LINK_DEV:-eth0}"
    set -- --dev "$dev" --rate "${LINK_RATE:-8mbit}"
    [ -z "${LINK_DELAY:-}" ] || set -- "$@" --delay "$LINK_DELAY"
    [ -z "${LINK_JITTER:-}" ] || set -- "$@" --jitter "$LINK_JITTER"
    [ -z "${LINK_LOSS:-}" ] || set -- "$@" --loss "$LINK_LOSS"
    apply "$@"
    trap 'tc qdisc del dev "$dev" root 2>/dev/null || true; exit 0' INT TERM
    if [ -n "${LINK_UP_S:-}" ]; then
      windows --dev "$dev" --up "$LINK_UP_S" --down "${LINK_DOWN_S:?LINK_DOWN_S with LINK_UP_S}"
    fi
    while true; do sleep 3600 & wait $!; done ;;
  *) die "usage: shape.sh apply|show|clear|windows|hold (see the header of this script)" ;;
esac
