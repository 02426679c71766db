# Drives kvproxy with Dalli (binary protocol) at ENV["KV_ADDR"]; prints OK or raises.
require "dalli"

def check(what, got, want)
  raise "#{what}: got #{got.inspect}, want #{want.inspect}" unless got == want
end

c = Dalli::Client.new(ENV.fetch("KV_ADDR"), socket_timeout: 5, socket_max_failures: 1, down_retry_delay: 0)

keys = (0...200).map { |i| "dalli:key #{i}" } # keys with spaces: binary only
keys.each { |k| c.set(k, "v-#{k}", 0, raw: true) }
want = keys.to_h { |k| [k, "v-#{k}"] }
check("get_multi", c.get_multi(*keys, "dalli:missing:1", "dalli:missing:2"), want)
check("get", c.get(keys[7]), "v-#{keys[7]}")
check("get miss", c.get("dalli:missing:1"), nil)

c.set("dalli:cas", "1", 0, raw: true)
check("cas", c.cas("dalli:cas") { |v| (v.to_i + 1).to_s }.is_a?(Integer), true) # the new CAS
check("after cas", c.get("dalli:cas"), "2")
check("cas miss", c.cas("dalli:missing:3") { |v| v }, nil)

check("incr create", c.incr("dalli:ctr", 1, 0, 5), 5)
check("incr", c.incr("dalli:ctr", 3), 8)
check("decr", c.decr("dalli:ctr", 10), 0)
check("incr miss", c.incr("dalli:missing:4", 1), nil)

check("touch", c.touch(keys[0], 100), true)
check("touch miss", c.touch("dalli:missing:5", 100), nil)

big = "x" * (500 * 1024)
c.set("dalli:big", big, 0, raw: true)
check("500 KB value", c.get("dalli:big"), big)

c.multi do
  (0...20).each { |i| c.set("dalli:multi:#{i}", i.to_s, 0, raw: true) }
end
check("multi", c.get_multi(*(0...20).map { |i| "dalli:multi:#{i}" }).size, 20)

check("delete", c.delete(keys[1]), true)
check("deleted", c.get(keys[1]), nil)
check("add existing", c.add(keys[2], "y", 0, raw: true), false)
c.replace("dalli:missing:6", "y", 0, raw: true)
check("replace missing", c.get("dalli:missing:6"), nil)
check("version", c.version.values.first.to_s.start_with?("1.6"), true)
puts "OK"
