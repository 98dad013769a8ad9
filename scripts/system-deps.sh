#!/usr/bin/env bash
# Debian packages the test suite needs: a PostgreSQL server, Orthanc with DICOMweb (the PACS),
# dcmtk (storescu), Chromium (browser tests), a Java runtime (Spark local mode), a JDK and Maven
# (tools/hapi: HAPI FHIR's validator and client) and Node.js with npm (the OpenID provider of
# tests/access/test_oidc.py, which installs its own npm package).
# Installs them when missing and we are root; otherwise says what to install. Idempotent and
# quiet when everything is there.
set -euo pipefail
need=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v Orthanc >/dev/null 2>&1 || need+=(orthanc)
ls /usr/share/orthanc/plugins/libOrthancDicomWeb.so >/dev/null 2>&1 || need+=(orthanc-dicomweb)
command -v storescu >/dev/null 2>&1 || need+=(dcmtk)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v java >/dev/null 2>&1 || need+=(default-jre-headless)
# the TLS front of deploy/nginx, tested in tests/web/test_deploy.py
command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ] || need+=(nginx)
# a JDK and Maven: tools/hapi (HAPI FHIR's validator and client, tests/conformance) is compiled
command -v javac >/dev/null 2>&1 || need+=(default-jdk-headless)
command -v mvn >/dev/null 2>&1 || need+=(maven)
# a font with Vietnamese letters for the PDFs the portal makes (health book, posters)
[ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need+=(fonts-dejavu-core)
# poppler's pdftotext and pdfinfo: the tests read those PDFs back with a reader of their own
command -v pdftotext >/dev/null 2>&1 || need+=(poppler-utils)
# by command, not by package: NodeSource's nodejs package bundles npm and conflicts with Debian's
command -v node >/dev/null 2>&1 || need+=(nodejs)
command -v npm >/dev/null 2>&1 || need+=(npm)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" -ne 0 ]; then
    echo "Missing Debian packages: ${need[*]} (run: sudo apt-get install ${need[*]})" >&2
    exit 1
  fi
  echo "Installing Debian packages: ${need[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi
# oidc-provider needs Node.js 20.19 or newer (engines in tests/access/oidc_provider/package.json):
# Debian 12's nodejs is 18, too old
version=$(node --version)
version=${version#v}
major=${version%%.*}
minor=${version#*.}
minor=${minor%%.*}
if [ "$major" -lt 20 ] || { [ "$major" -eq 20 ] && [ "$minor" -lt 19 ]; }; then
  echo "Node.js $version is too old for the OpenID provider tests: 20.19 or newer is needed" \
    "(Debian 12 ships 18: install Node.js 20 or 22 from https://nodejs.org or NodeSource)" >&2
  exit 1
fi
