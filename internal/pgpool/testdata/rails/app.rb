# A Rails-style workload through pgpool with ActiveRecord's defaults: prepared
# statements and advisory locks on. Connection settings come from the environment.
# Exits non-zero (with the first error) if anything goes wrong or a total is off.
require "active_record"
require "tmpdir"

THREADS = Integer(ENV.fetch("THREADS", "16"))
ROUNDS = Integer(ENV.fetch("ROUNDS", "25"))

ActiveRecord::Base.establish_connection(
  adapter: "postgresql",
  host: ENV.fetch("PGHOST"),
  port: Integer(ENV.fetch("PGPORT")),
  database: ENV.fetch("PGDATABASE"),
  username: ENV.fetch("PGUSER"),
  password: ENV.fetch("PGPASSWORD"),
  pool: THREADS + 2,
  prepared_statements: true, # Rails' default
  advisory_locks: true,      # Rails' default
  variables: { statement_timeout: "30s" }
)

Dir.mktmpdir do |dir|
  File.write(File.join(dir, "20240101000000_create_items.rb"), <<~RUBY)
    class CreateItems < ActiveRecord::Migration[6.1]
      def change
        create_table :items do |t|
          t.string :name, null: false
          t.integer :qty, null: false, default: 0
        end
        add_index :items, :name
      end
    end
  RUBY
  ctx = ActiveRecord::MigrationContext.new(dir, ActiveRecord::SchemaMigration)
  ctx.migrate # takes and releases pg_try_advisory_lock / pg_advisory_unlock
  raise "migration did not run" unless ActiveRecord::Base.connection.table_exists?(:items)
end

class Item < ActiveRecord::Base; end
Item.reset_column_information

errors = Queue.new
threads = THREADS.times.map do |t|
  Thread.new do
    ActiveRecord::Base.connection_pool.with_connection do
      ROUNDS.times do |r|
        Item.transaction do
          item = Item.create!(name: "t#{t}-r#{r}", qty: r)
          locked = Item.lock.find(item.id)          # SELECT ... FOR UPDATE
          locked.update!(qty: locked.qty + 1)
        end
        # Queries by different parameters: the same prepared statements, many values.
        found = Item.find_by(name: "t#{t}-r#{r}")
        raise "t#{t} r#{r}: row not found" unless found
        raise "t#{t} r#{r}: qty #{found.qty}" unless found.qty == r + 1
        n = Item.where("name LIKE ?", "t#{t}-%").count
        raise "t#{t} r#{r}: count #{n}" unless n == r + 1
      end
    end
  rescue => e
    errors << "#{e.class}: #{e.message}"
  end
end
threads.each(&:join)
unless errors.empty?
  warn errors.pop
  exit 1
end

count = Item.count
sum = Item.sum(:qty)
want_count = THREADS * ROUNDS
want_sum = THREADS * (ROUNDS * (ROUNDS - 1) / 2 + ROUNDS)
if count != want_count || sum != want_sum
  warn "totals: count #{count} (want #{want_count}), sum #{sum} (want #{want_sum})"
  exit 1
end
puts "ok: #{count} rows, sum #{sum}"
