# Sourced by `make test` (POSIX sh): point the tests at a local PostgreSQL and Redis when they
# answer, so that their tests run; say so either way. A CYPHER_TEST_DATABASE_URL or
# CYPHER_TEST_REDIS_URL already set is kept. Starting the services is not this file's business
# (.ci/run starts them on CI's machine).

test_pg_host=${TEST_PG_HOST:-127.0.0.1}
test_pg_port=${TEST_PG_PORT:-5432}
test_database=${TEST_DATABASE:-cypher_test}
test_redis_port=${TEST_REDIS_PORT:-6379}

if [ -z "${CYPHER_TEST_DATABASE_URL:-}" ] && command -v pg_isready >/dev/null 2>&1 \
    && pg_isready -q -h "$test_pg_host" -p "$test_pg_port" 2>/dev/null; then
    if psql -h "$test_pg_host" -p "$test_pg_port" -U postgres -tAc \
        "SELECT 1 FROM pg_database WHERE datname = '$test_database'" 2>/dev/null | grep -q 1 \
        || createdb -h "$test_pg_host" -p "$test_pg_port" -U postgres "$test_database" 2>/dev/null; then
        CYPHER_TEST_DATABASE_URL="postgresql://postgres@$test_pg_host:$test_pg_port/$test_database"
        export CYPHER_TEST_DATABASE_URL
    else
        echo "PostgreSQL answers on $test_pg_host:$test_pg_port, but not to the postgres role without a password" >&2
    fi
fi
echo "PostgreSQL tests: ${CYPHER_TEST_DATABASE_URL:-off (nothing usable answers on $test_pg_host:$test_pg_port)}"

if [ -z "${CYPHER_TEST_REDIS_URL:-}" ] && command -v redis-cli >/dev/null 2>&1 \
    && redis-cli -h 127.0.0.1 -p "$test_redis_port" ping >/dev/null 2>&1; then
    CYPHER_TEST_REDIS_URL="redis://127.0.0.1:$test_redis_port/15"
    export CYPHER_TEST_REDIS_URL
fi
echo "Redis tests: ${CYPHER_TEST_REDIS_URL:-off (nothing answers on 127.0.0.1:$test_redis_port)}"
