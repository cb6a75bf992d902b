#!/usr/bin/env bash
# Installs the reference for the web crate's interop tests
# (CHARCOAL_INTEROP=1 cargo test -p charcoal-web) and for benches/render-vs-graphite-web.sh:
#   - Debian's libcairo2 (graphite-web imports cairocffi at start-up)
#   - a Python venv at $CHARCOAL_GRAPHITE_WEB (default /opt/charcoal-interop/graphite-web) holding
#     graphite-web 1.1.10, whisper 1.1.10, Django 3.0.14, django-tagging 0.4.3, pyparsing,
#     cairocffi, pytz, six and gunicorn 23 (24+ writes a control socket under $HOME)
#   - $CHARCOAL_GRAPHITE_WEB/settings/charcoal_gw_settings.py: a graphite-web settings module that
#     takes its storage directory from the environment variable CHARCOAL_GW_STORAGE_DIR (whisper
#     files under $CHARCOAL_GW_STORAGE_DIR/whisper, SQLite tag DB beside them), UTC, no carbonlink,
#     and restores inspect.getargspec/formatargspec, which Python 3.11 removed and which
#     graphite-web's /functions needs.
# The tests start `gunicorn graphite.wsgi:application` from this venv on a free loopback port with
# PYTHONPATH=$CHARCOAL_GRAPHITE_WEB/settings and GRAPHITE_SETTINGS_MODULE=charcoal_gw_settings.
# Idempotent; runs as root on Debian 12.
set -euo pipefail

prefix=${CHARCOAL_GRAPHITE_WEB:-/opt/charcoal-interop/graphite-web}

if ! dpkg-query -W -f='${Status}' libcairo2 2>/dev/null | grep -q 'install ok installed' ||
    ! dpkg-query -W -f='${Status}' python3-venv 2>/dev/null | grep -q 'install ok installed'; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends libcairo2 python3-venv python3-pip
fi

stamp="$prefix/.charcoal-installed-v1"
if [ ! -e "$stamp" ]; then
    mkdir -p "$prefix"
    [ -x "$prefix/bin/python" ] || python3 -m venv "$prefix"
    # GRAPHITE_NO_PREFIX keeps graphite-web's files inside the venv instead of /opt/graphite.
    GRAPHITE_NO_PREFIX=1 "$prefix/bin/pip" install --quiet --no-cache-dir \
        'graphite-web==1.1.10' 'whisper==1.1.10' 'Django==3.0.14' 'django-tagging==0.4.3' \
        'pyparsing<3.2' 'cairocffi' 'pytz' 'six' 'gunicorn==23.0.0'
    touch "$stamp"
fi

mkdir -p "$prefix/settings"
cat >"$prefix/settings/charcoal_gw_settings.py" <<'EOF'
# graphite-web settings for Charcoal's interop tests (written by .ci/setup-graphite-web.sh).
import inspect
import os
from os.path import join

# Python 3.11 removed these; graphite-web's /functions calls them.
if not hasattr(inspect, 'getargspec'):
    def _getargspec(func):
        spec = inspect.getfullargspec(func)
        return spec.args, spec.varargs, spec.varkw, spec.defaults
    inspect.getargspec = _getargspec
if not hasattr(inspect, 'formatargspec'):
    def _formatargspec(args, varargs=None, varkw=None, defaults=None):
        parts = []
        first_default = len(args) - len(defaults or ())
        for i, arg in enumerate(args):
            if defaults and i >= first_default:
                parts.append('%s=%r' % (arg, defaults[i - first_default]))
            else:
                parts.append(arg)
        if varargs:
            parts.append('*' + varargs)
        if varkw:
            parts.append('**' + varkw)
        return '(' + ', '.join(parts) + ')'
    inspect.formatargspec = _formatargspec

STORAGE_DIR = os.environ['CHARCOAL_GW_STORAGE_DIR']
WHISPER_DIR = join(STORAGE_DIR, 'whisper')
STANDARD_DIRS = [WHISPER_DIR]
LOG_DIR = join(STORAGE_DIR, 'log')
os.makedirs(LOG_DIR, exist_ok=True)
INDEX_FILE = join(STORAGE_DIR, 'index')
TIME_ZONE = 'UTC'
SECRET_KEY = 'charcoal-interop-only'
CARBONLINK_HOSTS = []
STORAGE_FINDERS = ('graphite.finders.standard.StandardFinder',)
USE_WORKER_POOL = False
DEFAULT_CACHE_DURATION = 0
DATABASES = {
    'default': {
        'NAME': join(STORAGE_DIR, 'graphite.db'),
        'ENGINE': 'django.db.backends.sqlite3',
    },
}
CACHES = {'default': {'BACKEND': 'django.core.cache.backends.dummy.DummyCache'}}
TAGDB_CACHE_DURATION = 0
EOF

"$prefix/bin/python" -c 'import graphite, whisper, django, gunicorn, cairocffi' >/dev/null
test -x "$prefix/bin/gunicorn"
test -x "$prefix/bin/django-admin"
