#!/usr/bin/env bash
# Debian packages the test suite needs: a PostgreSQL server, Orthanc with DICOMweb (the PACS),
# dcmtk (storescu), Chromium (browser tests) and a Java runtime (Spark local mode). Installs them when missing and we
# are root; otherwise says what to install. Idempotent and quiet when everything is there.
set -euo pipefail
need=()
ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || need+=(postgresql)
command -v Orthanc >/dev/null 2>&1 || need+=(orthanc)
ls /usr/share/orthanc/plugins/libOrthancDicomWeb.so >/dev/null 2>&1 || need+=(orthanc-dicomweb)
command -v storescu >/dev/null 2>&1 || need+=(dcmtk)
command -v chromium >/dev/null 2>&1 || need+=(chromium)
command -v java >/dev/null 2>&1 || need+=(default-jre-headless)
if [ ${#need[@]} -eq 0 ]; then exit 0; fi
if [ "$(id -u)" -ne 0 ]; then
  echo "Missing Debian packages: ${need[*]} (run: sudo apt-get install ${need[*]})" >&2
  exit 1
fi
echo "Installing Debian packages: ${need[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
