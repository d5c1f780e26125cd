# Sourced by ./moe4j and dev/*: finds a JDK 25+ and exports MOE4J_JDK (its home).
# Order: $MOE4J_JAVA_HOME, $JAVA_HOME, then installed JVMs (/usr/lib/jvm, /opt, /usr/local), newest first.

moe4j_jdk_major() { # $1 = JDK home; prints the feature version or nothing
  local home="$1" v=""
  [ -x "$home/bin/java" ] && [ -x "$home/bin/javac" ] || return 0
  if [ -f "$home/release" ]; then
    v=$(sed -n 's/^JAVA_VERSION="\([0-9]*\).*/\1/p' "$home/release" | head -n1)
  fi
  if [ -z "$v" ]; then
    v=$("$home/bin/java" -version 2>&1 | sed -n 's/.*version "\([0-9]*\).*/\1/p' | head -n1)
  fi
  printf '%s' "$v"
}

moe4j_find_jdk() {
  local c major
  local candidates=()
  [ -n "${MOE4J_JAVA_HOME:-}" ] && candidates+=("$MOE4J_JAVA_HOME")
  [ -n "${JAVA_HOME:-}" ] && candidates+=("$JAVA_HOME")
  for c in $(ls -d /usr/lib/jvm/* /opt/java/* /opt/*jdk* /usr/local/*jdk* 2>/dev/null | sort -rV); do
    candidates+=("$c")
  done
  for c in "${candidates[@]}"; do
    major=$(moe4j_jdk_major "$c")
    if [ -n "$major" ] && [ "$major" -ge 25 ]; then
      MOE4J_JDK="$c"
      export MOE4J_JDK
      return 0
    fi
  done
  echo "moe4j: no JDK 25 or newer found (looked at \$MOE4J_JAVA_HOME, \$JAVA_HOME, /usr/lib/jvm, /opt)." >&2
  echo "moe4j: install one (e.g. Temurin 25) or point JAVA_HOME at it." >&2
  return 1
}

# Maven on JDK 25 warns about sun.misc.Unsafe use inside Maven itself; that is noise for moe4j users.
moe4j_maven_opts() {
  export MAVEN_OPTS="${MAVEN_OPTS:-} --sun-misc-unsafe-memory-access=allow -XX:+UseSerialGC"
}
