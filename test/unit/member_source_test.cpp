// Tests of actors/member/member_source: parsing an address server's list, the reload rules shared
// with `members`, start-up retries with a deadline, and failures reported once per change of state.

#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "actors/member/member_source.hpp"

namespace {

using registry::fetch_outcome;
using registry::host_port;
using registry::member_source;
using registry::member_source_kind;
using registry::node_config;

const host_port self{"127.0.0.1", 8848};
const std::string url = "http://127.0.0.1:9000/nacos/serverlist";

fetch_outcome answer(const std::string& body, long status = 200) {
  fetch_outcome x;
  x.transferred = true;
  x.status = status;
  x.body = body;
  return x;
}

fetch_outcome no_answer(const std::string& error) {
  fetch_outcome x;
  x.error = error;
  return x;
}

node_config url_config(std::int64_t poll_ms = 1000, std::int64_t start_wait_ms = 5000) {
  node_config cfg;
  cfg.listen = self;
  cfg.members_url = url;
  cfg.members_poll_interval_ms = poll_ms;
  cfg.members_start_wait_ms = start_wait_ms;
  return cfg;
}

node_config file_config(std::vector<host_port> members) {
  node_config cfg;
  cfg.listen = self;
  cfg.members = std::move(members);
  return cfg;
}

std::vector<host_port> parse_ok(const std::string& body) {
  auto r = registry::parse_member_lines(body, self);
  if (auto* err = std::get_if<std::string>(&r))
    FAIL("unexpected error: " << *err);
  return std::get<std::vector<host_port>>(r);
}

std::string parse_error(const std::string& body) {
  auto r = registry::parse_member_lines(body, self);
  if (!std::holds_alternative<std::string>(r))
    FAIL("accepted a list that must be refused:\n" << body);
  return std::get<std::string>(r);
}

/// A source that has started from `body` at time 0.
member_source started(const std::string& body, std::int64_t poll_ms = 1000) {
  member_source src{url_config(poll_ms), 0};
  auto fx = src.on_fetch(0, answer(body));
  REQUIRE(fx.members);
  REQUIRE(!src.starting());
  return src;
}

} // namespace

// -- parsing ---------------------------------------------------------------------------

TEST_CASE("member_source: a list is one HOST:PORT a line; blanks and spaces ignored; sorted") {
  std::vector<host_port> expected = {{"127.0.0.1", 8848}, {"127.0.0.1", 8850}, {"node-b.example", 9}};
  CHECK(parse_ok("127.0.0.1:8850\n127.0.0.1:8848\nNode-B.example:9\n") == expected);
  CHECK(parse_ok("\n  127.0.0.1:8850 \r\n\t127.0.0.1:8848\r\n\n \nnode-b.example:9") == expected);
  // Duplicates are dropped, as in `members`.
  CHECK(parse_ok("127.0.0.1:8848\n127.0.0.1:8848\n").size() == 1);
}

TEST_CASE("member_source: bad lines are refused as members_url: LINE N: PROBLEM") {
  auto check = [](const std::string& body, const std::string& prefix, const std::string& part) {
    auto err = parse_error(body);
    INFO(err);
    CHECK(err.rfind(prefix, 0) == 0);
    CHECK(err.find(part) != std::string::npos);
  };
  check("127.0.0.1:8848\n\n127.0.0.1:70000\n", "members_url: LINE 3: ", "out of range");
  check("127.0.0.1:8848\n127.0.0.1\n", "members_url: LINE 2: ", "missing port");
  check("127.0.0.1:8848\n0.0.0.0:8850\n", "members_url: LINE 2: ", "0.0.0.0");
  check("<html>oops</html>\n", "members_url: LINE 1: ", "HOST:PORT");
  check("127.0.0.1:8848 127.0.0.1:8850\n", "members_url: LINE 1: ", "whitespace");
  check(std::string("127.0.0.1:8848\n\x01\x02:5\n"), "members_url: LINE 2: ", "control");
}

TEST_CASE("member_source: a list must be non-empty, bounded and hold the node itself") {
  auto err = parse_error("\n  \n");
  CHECK(err.rfind("members_url: ", 0) == 0);
  CHECK(err.find("empty") != std::string::npos);

  err = parse_error("127.0.0.1:8850\n127.0.0.1:8852\n");
  INFO(err);
  CHECK(err.rfind("members_url: ", 0) == 0);
  CHECK(err.find("listen address") != std::string::npos);
  CHECK(err.find("127.0.0.1:8848") != std::string::npos);

  std::string many = "127.0.0.1:8848\n";
  for (std::size_t i = 0; i < registry::defaults::members_max; ++i)
    many += "10.0.0.1:" + std::to_string(10000 + i) + "\n";
  err = parse_error(many);
  CHECK(err.find("at most " + std::to_string(registry::defaults::members_max)) != std::string::npos);

  err = parse_error(std::string(registry::defaults::members_response_bytes_max + 1, '\n'));
  CHECK(err.find("larger than") != std::string::npos);
}

TEST_CASE("member_source: failed transfers, other statuses and bad bodies are reasons") {
  auto reason = [](const fetch_outcome& x) {
    auto r = registry::evaluate_fetch(x, self);
    REQUIRE(std::holds_alternative<std::string>(r));
    return std::get<std::string>(r);
  };
  CHECK(reason(no_answer("Couldn't connect to server")) ==
        "members_url: Couldn't connect to server");
  CHECK(reason(answer("127.0.0.1:8848\n", 503)) == "members_url: expected HTTP status 200, got 503");
  CHECK(reason(answer("", 200)).find("empty") != std::string::npos);
  auto ok = registry::evaluate_fetch(answer("127.0.0.1:8848\n"), self);
  CHECK(std::holds_alternative<std::vector<host_port>>(ok));
}

// -- kinds ------------------------------------------------------------------------------

TEST_CASE("member_source: file, standalone and url sources") {
  member_source alone{file_config({self}), 0};
  CHECK(alone.kind() == member_source_kind::standalone);
  CHECK(alone.fetch_due_in_ms(0) == -1);
  CHECK(!alone.starting());

  member_source file{file_config({self, {"127.0.0.1", 8850}}), 0};
  CHECK(file.kind() == member_source_kind::file);
  CHECK(file.fetch_due_in_ms(123) == -1);

  member_source web{url_config(), 0};
  CHECK(web.kind() == member_source_kind::url);
  CHECK(web.starting());
  CHECK(web.members().empty());
  CHECK(web.fetch_due_in_ms(0) == 0);
  CHECK(web.url() == url);
  CHECK(std::string{registry::to_string(member_source_kind::url)} == "url");
}

// -- start-up ---------------------------------------------------------------------------

TEST_CASE("member_source: the start fetches at once and takes the first good list") {
  member_source src{url_config(), 0};
  auto fx = src.on_fetch(5, answer("127.0.0.1:8850\n127.0.0.1:8848\n"));
  REQUIRE(fx.members);
  CHECK(fx.members->size() == 2);
  CHECK(fx.fatal.empty());
  CHECK(!src.starting());
  CHECK(src.members() == *fx.members);
  CHECK(src.fetch_due_in_ms(5) == 1000); // then every poll interval
}

TEST_CASE("member_source: the start retries until members_start_wait_ms, then gives up") {
  member_source src{url_config(/*poll_ms=*/5000, /*start_wait_ms=*/2500), 0};
  auto fx = src.on_fetch(0, no_answer("Couldn't connect to server"));
  CHECK(fx.fatal.empty());
  CHECK(fx.errors.size() == 1); // the first failure is reported
  CHECK(src.starting());
  CHECK(src.fetch_due_in_ms(0) == registry::defaults::members_start_retry_ms);
  fx = src.on_fetch(1000, no_answer("Couldn't connect to server"));
  CHECK(fx.fatal.empty());
  CHECK(fx.errors.empty()); // the same failure again: nothing new to report
  fx = src.on_fetch(2000, answer("garbage\n"));
  REQUIRE(!fx.fatal.empty()); // the next retry would be past the deadline
  INFO(fx.fatal);
  CHECK(fx.fatal.rfind("members_url: LINE 1: ", 0) == 0);
  CHECK(fx.fatal.find("members_start_wait_ms") != std::string::npos);
  CHECK(fx.fatal.find(url) != std::string::npos);
  CHECK(!fx.members);
}

TEST_CASE("member_source: a start wait of 0 allows exactly one attempt") {
  member_source src{url_config(1000, 0), 0};
  auto fx = src.on_fetch(0, answer("nope", 404));
  CHECK(!fx.fatal.empty());
  CHECK(fx.fatal.find("got 404") != std::string::npos);
}

TEST_CASE("member_source: start retries are no slower than the poll interval") {
  member_source src{url_config(/*poll_ms=*/200, 5000), 0};
  src.on_fetch(0, no_answer("Timeout was reached"));
  CHECK(src.fetch_due_in_ms(0) == 200);
}

// -- polling ----------------------------------------------------------------------------

TEST_CASE("member_source: a changed list is applied; an unchanged one is not sent again") {
  auto src = started("127.0.0.1:8848\n");
  CHECK(src.fetch_due_in_ms(0) == 1000);
  CHECK(src.fetch_due_in_ms(400) == 600);
  CHECK(src.fetch_due_in_ms(5000) == 0);

  auto fx = src.on_fetch(1000, answer("127.0.0.1:8848\n"));
  CHECK(!fx.members);
  CHECK(fx.errors.empty());
  fx = src.on_fetch(2000, answer("127.0.0.1:8848\n127.0.0.1:8850\n"));
  REQUIRE(fx.members);
  CHECK(fx.members->size() == 2);
  CHECK(src.members().size() == 2);
  CHECK(src.fetch_due_in_ms(2000) == 1000);
}

TEST_CASE("member_source: failures keep the last good list and are reported once per change") {
  auto src = started("127.0.0.1:8848\n127.0.0.1:8850\n");
  const auto good = src.members();

  auto fx = src.on_fetch(1000, answer("", 500));
  CHECK(!fx.members);
  REQUIRE(fx.errors.size() == 1);
  CHECK(fx.errors[0].find("got 500") != std::string::npos);
  CHECK(fx.errors[0].find("keeps its 2 members") != std::string::npos);
  CHECK(src.members() == good);
  CHECK(src.fetch_due_in_ms(1000) == 1000); // failures do not poll faster

  // The same failure again: nothing to report.
  for (int i = 2; i < 5; ++i) {
    fx = src.on_fetch(i * 1000, answer("", 500));
    CHECK(fx.errors.empty());
    CHECK(fx.infos.empty());
  }
  // Another reason is a change of state.
  fx = src.on_fetch(5000, answer("127.0.0.1:8848\n0.0.0.0:1\n"));
  REQUIRE(fx.errors.size() == 1);
  CHECK(fx.errors[0].find("members_url: LINE 2: ") != std::string::npos);
  fx = src.on_fetch(6000, no_answer("Timeout was reached"));
  REQUIRE(fx.errors.size() == 1);
  CHECK(fx.errors[0].find("Timeout was reached") != std::string::npos);
  // A list without this node is refused like any bad list.
  fx = src.on_fetch(7000, answer("127.0.0.1:8850\n"));
  CHECK(fx.errors.size() == 1);
  CHECK(!fx.members);
  CHECK(src.members() == good);

  // Recovery is reported once; the same list as before changes nothing.
  fx = src.on_fetch(8000, answer("127.0.0.1:8850\n127.0.0.1:8848\n"));
  CHECK(fx.errors.empty());
  REQUIRE(fx.infos.size() == 1);
  CHECK(fx.infos[0].find("again") != std::string::npos);
  CHECK(!fx.members);
  fx = src.on_fetch(9000, answer("127.0.0.1:8850\n127.0.0.1:8848\n"));
  CHECK(fx.infos.empty());

  // After a recovery the same failure as before is new again.
  fx = src.on_fetch(10000, answer("", 500));
  CHECK(fx.errors.size() == 1);
}

// -- re-reading the config ----------------------------------------------------------------

TEST_CASE("member_source: a re-read file applies its members; errors and listen changes keep them") {
  member_source src{file_config({self}), 0};
  auto fx = src.on_config(10, file_config({self, {"127.0.0.1", 8850}}));
  REQUIRE(fx.members);
  CHECK(fx.members->size() == 2);
  CHECK(src.kind() == member_source_kind::file);

  fx = src.on_config(20, file_config({self, {"127.0.0.1", 8850}}));
  CHECK(!fx.members);
  CHECK(fx.infos.size() == 1);

  fx = src.on_config(30, std::string{"node.yaml: members[1]: port 70000 is out of range 1..65535"});
  CHECK(!fx.members);
  REQUIRE(fx.errors.size() == 1);
  CHECK(fx.errors[0].find("members[1]") != std::string::npos);

  auto moved = file_config({{"127.0.0.1", 8850}});
  moved.listen = {"127.0.0.1", 8850};
  fx = src.on_config(40, moved);
  CHECK(!fx.members);
  REQUIRE(fx.errors.size() == 1);
  CHECK(fx.errors[0].find("listen cannot change") != std::string::npos);
  CHECK(src.members().size() == 2);
}

TEST_CASE("member_source: a re-read file may switch to members_url and back") {
  member_source src{file_config({self, {"127.0.0.1", 8850}}), 0};
  auto fx = src.on_config(100, url_config());
  CHECK(!fx.members); // the last list stays until the server answers
  CHECK(src.kind() == member_source_kind::url);
  CHECK(src.fetch_due_in_ms(100) == 0);
  CHECK(!src.starting());
  fx = src.on_fetch(100, answer("127.0.0.1:8848\n"));
  REQUIRE(fx.members);
  CHECK(fx.members->size() == 1);

  // SIGHUP with the same URL: fetch at once.
  src.on_fetch(200, answer("", 500));
  CHECK(src.fetch_due_in_ms(200) > 0);
  src.on_config(300, url_config());
  CHECK(src.fetch_due_in_ms(300) == 0);

  fx = src.on_config(400, file_config({self, {"127.0.0.1", 8852}}));
  REQUIRE(fx.members);
  CHECK(src.kind() == member_source_kind::file);
  CHECK(src.fetch_due_in_ms(400) == -1);
  // A fetch that was running when the file switched away is ignored.
  fx = src.on_fetch(450, answer("127.0.0.1:8848\n"));
  CHECK(!fx.members);
  CHECK(src.members().size() == 2);
}
