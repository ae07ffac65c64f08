// The order in which waiting HTTP requests get a transfer (issue 13: protocol deadlines before
// bulk work).
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "http/http.h"
#include "http/request_queue.h"

using g2m::HttpPriority;
using g2m::HttpRequest;
using g2m::RequestQueue;

TEST_CASE("http: a request is of normal priority unless it says otherwise") {
  CHECK(HttpRequest{}.priority == HttpPriority::normal);
}

TEST_CASE(
    "http: waiting requests start urgent first, then normal, then bulk, each in the order "
    "they were sent") {
  RequestQueue<std::string> queue;
  queue.push("graph-1", HttpPriority::bulk);
  queue.push("devicecode-a", HttpPriority::normal);
  queue.push("graph-2", HttpPriority::bulk);
  queue.push("poll-b", HttpPriority::urgent);
  queue.push("devicecode-c", HttpPriority::normal);
  queue.push("refresh-d", HttpPriority::urgent);
  CHECK(queue.size() == 6);
  std::vector<std::string> order;
  while (auto next = queue.pop()) order.push_back(*next);
  CHECK(order == std::vector<std::string>{"poll-b", "refresh-d", "devicecode-a", "devicecode-c",
                                          "graph-1", "graph-2"});
  CHECK(queue.empty());
  CHECK_FALSE(queue.pop());
}

TEST_CASE("http: an urgent request sent while bulk ones wait goes before them") {
  RequestQueue<int> queue;
  for (int i = 0; i < 100; ++i) queue.push(i, HttpPriority::bulk);
  CHECK(queue.pop() == 0);
  queue.push(1000, HttpPriority::urgent);
  CHECK(queue.pop() == 1000);
  CHECK(queue.pop() == 1);
}
