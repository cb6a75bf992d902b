# Sourced by .ci/setup-*.sh: apt_install PACKAGE... installs Debian packages quietly without
# starting their services (a policy-rc.d denying every action while apt runs, removed
# afterwards unless the machine already had one). Tries the current package lists first and
# updates them only when that fails.
apt_install() {
    local policy=/usr/sbin/policy-rc.d created=0 status=0
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\nexit 101\n' >"$policy"
        chmod 0755 "$policy"
        created=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -qq --no-install-recommends "$@" >/dev/null \
        || { apt-get update -qq && apt-get install -y -qq --no-install-recommends "$@" >/dev/null; } \
        || status=$?
    [ "$created" = 1 ] && rm -f "$policy"
    return "$status"
}
