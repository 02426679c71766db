# Tenant ids handed to PostgreSQL per connection, as row-level security setups do:
# each thread sets myapp.tenant on its ActiveRecord connection once, then every query
# must see its own tenant. Connection settings come from the environment. Exits
# non-zero (with the first error) if any read sees another value or fails.
require "active_record"

THREADS = Integer(ENV.fetch("THREADS", "50"))
ROUNDS = Integer(ENV.fetch("ROUNDS", "20"))

ActiveRecord::Base.establish_connection(
  adapter: "postgresql",
  host: ENV.fetch("PGHOST"),
  port: Integer(ENV.fetch("PGPORT")),
  database: ENV.fetch("PGDATABASE"),
  username: ENV.fetch("PGUSER"),
  password: ENV.fetch("PGPASSWORD"),
  pool: THREADS,
  checkout_timeout: 60,
  prepared_statements: true, # Rails' default
  advisory_locks: true       # Rails' default
)

errors = Queue.new
reads = Queue.new
ready = Queue.new
start = Queue.new
threads = THREADS.times.map do |t|
  Thread.new do
    ActiveRecord::Base.connection_pool.with_connection do |conn|
      tenant = "tenant-#{t}"
      conn.execute("SET myapp.tenant = #{conn.quote(tenant)}")
      ready << t
      start.pop # every thread has its own connection and tenant before any reads
      ROUNDS.times do |r|
        got = conn.select_value("SELECT current_setting('myapp.tenant')")
        raise "thread #{t} round #{r}: tenant #{got.inspect}" unless got == tenant
        conn.transaction do
          got = conn.select_value("SELECT current_setting('myapp.tenant')")
        end
        raise "thread #{t} round #{r} (transaction): tenant #{got.inspect}" unless got == tenant
        reads << 1
      end
    end
  rescue => e
    errors << "#{e.class}: #{e.message}"
    ready << t
  end
end
THREADS.times { ready.pop }
THREADS.times { start << true }
threads.each(&:join)
unless errors.empty?
  warn "#{errors.size} threads failed; first: #{errors.pop}"
  exit 1
end
puts "ok: #{reads.size} rounds over #{THREADS} threads"
