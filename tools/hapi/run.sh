#!/bin/sh
# HAPI FHIR's validator or generic client (tools/hapi): `run.sh validate FILE...`,
# `run.sh client BASE_URL TOKEN`. Builds once (`mvn -q -B package`) if target/ is missing.
here=$(cd "$(dirname "$0")" && pwd)
if [ ! -f "$here/target/classpath.txt" ] || [ ! -d "$here/target/classes" ]; then
  (cd "$here" && mvn -q -B package) || exit 2
fi
exec java -XX:+UseSerialGC -Xss4m -cp "$here/target/classes:$(cat "$here/target/classpath.txt")" vn.sokhoe.hapi.Main "$@"
