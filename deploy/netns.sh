#!/bin/sh
# Two network namespaces joined by a veth pair, for running the services without Docker
# over a kernel-shaped link (addresses in 192.0.2.0/24, TEST-NET-1: never a real host).
#
#   netns.sh up   [PREFIX]        create PREFIX-onboard (192.0.2.1) and PREFIX-ground (192.0.2.2)
#   netns.sh down [PREFIX]        remove them
#   netns.sh exec onboard|ground [PREFIX] -- CMD...   run CMD inside one of them
#
# Shape the onboard side's link toward the ground with deploy/shape.sh inside the onboard
# namespace, e.g.:
#   ip netns exec tf-onboard deploy/shape.sh apply --dev tf-ob0 --rate 8mbit
set -eu

die() { echo "netns.sh: $*" >&2; exit 2; }
[ "$(id -u)" = 0 ] || die "needs root (ip netns)"
cmd="${1:-}"; [ $# -gt 0 ] && shift
prefix="tf"
case "$cmd" in
  up|down) [ -z "${1:-}" ] || prefix="$1" ;;
esac
echo "$prefix" | grep -Eq '^[a-z][a-z0-9]{0,7}$' || die "prefix: 1-8 lower-case letters/digits"
ob="$prefix-onboard"; gr="$prefix-ground"; vo="$prefix-ob0"; vg="$prefix-gr0"

case "$cmd" in
  up)
    ip netns add "$ob"; ip netns add "$gr"
    ip link add "$vo" type veth peer name "$vg"
    ip link set "$vo" netns "$ob"; ip link set "$vg" netns "$gr"
    ip -n "$ob" addr add 192.0.2.1/24 dev "$vo"; ip -n "$gr" addr add 192.0.2.2/24 dev "$vg"
    for ns in "$ob" "$gr"; do ip -n "$ns" link set lo up; done
    ip -n "$ob" link set "$vo" up; ip -n "$gr" link set "$vg" up
    echo "netns.sh: $ob (192.0.2.1, $vo) <-> $gr (192.0.2.2, $vg)" ;;
  down)
    ip netns del "$ob" 2>/dev/null || true; ip netns del "$gr" 2>/dev/null || true
    echo "netns.sh: removed $ob and $gr" ;;
  exec)
    side="${1:-}"; shift || true
    if [ "${1:-}" != "--" ] && [ -n "${1:-}" ]; then prefix="$1"; shift; fi
    [ "${1:-}" = "--" ] && shift
    case "$side" in onboard) ns="$prefix-onboard" ;; ground) ns="$prefix-ground" ;;
      *) die "exec onboard|ground [PREFIX] -- CMD" ;; esac
    exec ip netns exec "$ns" "$@" ;;
  *) die "usage: netns.sh up|down [PREFIX] | exec onboard|ground [PREFIX] -- CMD..." ;;
esac
