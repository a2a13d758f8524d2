using System.Text.Json;
using System.Text.Json.Serialization.Metadata;
using Centrifugo.Actors.Host;
using Centrifugo.Actors.Operations;
using Centrifugo.Actors.Partitions;

namespace Centrifugo.Actors.Tests.Hosting;

/// <summary>
/// The admin endpoint's wire contract (<see cref="AdminJson"/>): the field names docs/operations.md and users' scripts
/// read, written exactly as before the contract was typed, and read back by the CLI without losing a field.
/// </summary>
[Trait(TestLane.Category, TestLane.Fast)]
public sealed class AdminApiTests
{
    private const string Node = "akka.tcp://centrifugo-actors@127.0.0.1:4053";
    private static readonly DateTimeOffset At = new DateTimeOffset(2026, 12, 7, 23, 59, 46, TimeSpan.Zero).AddTicks(9228993);

    private static readonly PartitionInfo Outbox = new("pg:pg_w:0", "pg_w", PartitionSource.Postgresql, "0", Node, PartitionState.Idle,
        2, 2, 0, null, null, At, null, null, Backlog: 0);

    private static readonly PartitionInfo Kafka = new(
        "kafka:k_w:orders:1", "k_w", PartitionSource.Kafka, "orders/1", Node, PartitionState.Stalled,
        1, 0, 3, "centrifugo answered 401", At, At, Lag: 4, Position: 17);

    private static readonly DeadLettersInfo DeadLetters = new(
    [
        new OutboxDeadLetterSet("pg_w", "\"outbox_dead_letter\"", 2, [new DeadLetterItem("pg_w", 1, 0, "publish", null, At, "\\x7b7d")]),
        new KafkaDeadLetterSet("k_w", "orders.dead_letter", 1,
            [new KafkaDeadLetterItem("k_w", "orders.dead_letter", 0, 5, "orders", 1, 9, "centrifugo error 102", false)]),
    ]);

    private static readonly ReplayResponse OutboxReplay = new(
        "pg_w", 1, [1], null, null, null, [999], new Dictionary<int, long[]> { [0] = [5] }, More: false);

    private static readonly ReplayResponse KafkaReplay = new(
        "k_w", 2, null, 0, ["orders.dead_letter/0@2"], "g.dead-letter-replay.k_w", [], null, More: false);

    [Fact]
    public void Partitions_are_written_with_the_documented_names_and_outbox_ones_with_their_backlog()
    {
        Assert.Equal("""
            [
              {
                "entity_id": "pg:pg_w:0",
                "consumer": "pg_w",
                "source": "postgresql",
                "partition": "0",
                "node": "akka.tcp://centrifugo-actors@127.0.0.1:4053",
                "state": "idle",
                "delivered": 2,
                "dead_lettered": 2,
                "errors": 0,
                "last_error": null,
                "last_error_at": null,
                "last_activity_at": "2026-12-07T23:59:46.9228993+00:00",
                "lag": null,
                "position": null,
                "backlog": 0
              },
              {
                "entity_id": "kafka:k_w:orders:1",
                "consumer": "k_w",
                "source": "kafka",
                "partition": "orders/1",
                "node": "akka.tcp://centrifugo-actors@127.0.0.1:4053",
                "state": "stalled",
                "delivered": 1,
                "dead_lettered": 0,
                "errors": 3,
                "last_error": "centrifugo answered 401",
                "last_error_at": "2026-12-07T23:59:46.9228993+00:00",
                "last_activity_at": "2026-12-07T23:59:46.9228993+00:00",
                "lag": 4,
                "position": 17
              }
            ]
            """, JsonSerializer.Serialize([Outbox, Kafka], AdminJson.Default.Partitions));
    }

    [Fact]
    public void Cluster_shards_readiness_and_the_paused_set_are_written_with_the_documented_names()
    {
        Assert.Equal("""
            {
              "self": "akka.tcp://centrifugo-actors@127.0.0.1:4053",
              "leader": null,
              "oldest": "akka.tcp://centrifugo-actors@127.0.0.1:4053",
              "members": [
                {
                  "address": "akka.tcp://centrifugo-actors@127.0.0.1:4053",
                  "status": "Up",
                  "roles": [
                    "partitions-pg-pg_w"
                  ],
                  "pod": "actors-0"
                }
              ],
              "unreachable": []
            }
            """, JsonSerializer.Serialize(Cluster(), AdminJson.Default.ClusterInfo));
        Assert.Equal("""
            {
              "nodes": [
                {
                  "node": "akka.tcp://centrifugo-actors@127.0.0.1:4053",
                  "shards": 1,
                  "partitions": 1,
                  "shard_ids": [
                    "pg:pg_w:0"
                  ],
                  "failed_shards": []
                }
              ]
            }
            """, JsonSerializer.Serialize(Shards(), AdminJson.Default.ShardsInfo));
        Assert.Equal("""
            {
              "ready": false,
              "member_status": "Up",
              "stalled_partitions": [
                {
                  "entity_id": "pg:pg_w:0",
                  "last_error": "centrifugo answered 401"
                }
              ]
            }
            """, JsonSerializer.Serialize(new ReadyResponse(false, "Up", [new StalledPartition("pg:pg_w:0", "centrifugo answered 401")]),
                AdminJson.Default.ReadyResponse));
        Assert.Equal("""
            {
              "paused": [
                "pg:pg_w:1"
              ]
            }
            """, JsonSerializer.Serialize(new PausedSet(["pg:pg_w:1"]), AdminJson.Default.PausedSet));
    }

    [Fact]
    public void Dead_letters_carry_the_items_of_their_source_after_its_name()
    {
        Assert.Equal("""
            {
              "consumers": [
                {
                  "consumer": "pg_w",
                  "source": "postgresql",
                  "table": "\u0022outbox_dead_letter\u0022",
                  "total": 2,
                  "items": [
                    {
                      "consumer": "pg_w",
                      "id": 1,
                      "partition": 0,
                      "method": "publish",
                      "reason": null,
                      "failed_at": "2026-12-07T23:59:46.9228993+00:00",
                      "payload": "\\x7b7d"
                    }
                  ]
                },
                {
                  "consumer": "k_w",
                  "source": "kafka",
                  "table": "orders.dead_letter",
                  "total": 1,
                  "items": [
                    {
                      "consumer": "k_w",
                      "dead_letter_topic": "orders.dead_letter",
                      "dead_letter_partition": 0,
                      "dead_letter_offset": 5,
                      "source_topic": "orders",
                      "source_partition": 1,
                      "source_offset": 9,
                      "reason": "centrifugo error 102",
                      "replayed": false
                    }
                  ]
                }
              ]
            }
            """, JsonSerializer.Serialize(DeadLetters, AdminJson.Default.DeadLettersInfo));
    }

    [Fact]
    public void A_replay_answers_only_the_fields_of_its_source()
    {
        Assert.Equal("""
            {
              "consumer": "pg_w",
              "replayed": 1,
              "dead_letter_ids": [
                1
              ],
              "not_found": [
                999
              ],
              "new_ids_by_partition": {
                "0": [
                  5
                ]
              },
              "more": false
            }
            """, JsonSerializer.Serialize(OutboxReplay, AdminJson.Default.ReplayResponse));
        Assert.Equal("""
            {
              "consumer": "k_w",
              "replayed": 2,
              "skipped_other_consumers": 0,
              "committed": [
                "orders.dead_letter/0@2"
              ],
              "replay_group": "g.dead-letter-replay.k_w",
              "not_found": [],
              "more": false
            }
            """, JsonSerializer.Serialize(KafkaReplay, AdminJson.Default.ReplayResponse));
    }

    [Fact]
    public void Actions_and_errors_are_written_compact_with_relaxed_escaping_as_before()
    {
        Assert.Equal("""{"error":"no partition pg:x:9 in this node's configuration (see `partitions list`) <id> \"x\""}""",
            JsonSerializer.Serialize(new AdminError("no partition pg:x:9 in this node's configuration (see `partitions list`) <id> \"x\""),
                AdminJson.Compact.AdminError));
        Assert.Equal("""{"action":"resume","id":"pg:gone:1","accepted":true,"in_force":true,"node":null}""",
            JsonSerializer.Serialize(new PauseInForce("resume", "pg:gone:1", true, true, null), AdminJson.Compact.PauseInForce));
        Assert.Equal("""{"action":"pause","id":"pg:a:1","accepted":true,"in_force":false,"error":"not confirmed"}""",
            JsonSerializer.Serialize(
                new PauseNotInForce("pause", "pg:a:1", true, false, "not confirmed"), AdminJson.Compact.PauseNotInForce));
        Assert.Equal("""{"action":"leave","address":"akka.tcp://s@h:1","accepted":true}""",
            JsonSerializer.Serialize(new MemberActionResult("leave", "akka.tcp://s@h:1", true), AdminJson.Compact.MemberActionResult));
        Assert.Equal("""{"level":"debug","previous":"info"}""",
            JsonSerializer.Serialize(new LogLevelResult("debug", "info"), AdminJson.Compact.LogLevelResult));
    }

    /// <summary>What the CLI reads and writes again (<c>--json</c>) is what the endpoint wrote: no field is lost or renamed on the
    /// way.</summary>
    [Fact]
    public void The_cli_reads_every_field_the_endpoint_writes()
    {
        AssertRoundTrip([Outbox, Kafka], AdminJson.Default.Partitions);
        AssertRoundTrip(Outbox, AdminJson.Default.PartitionInfo);
        AssertRoundTrip(Cluster(), AdminJson.Default.ClusterInfo);
        AssertRoundTrip(Shards(), AdminJson.Default.ShardsInfo);
        AssertRoundTrip(new PausedSet(["pg:a:1"]), AdminJson.Default.PausedSet);
        AssertRoundTrip(DeadLetters, AdminJson.Default.DeadLettersInfo);
        AssertRoundTrip(OutboxReplay, AdminJson.Default.ReplayResponse);
        AssertRoundTrip(KafkaReplay, AdminJson.Default.ReplayResponse);
        AssertRoundTrip([OutboxReplay, OutboxReplay], AdminJson.Default.Replays);
        AssertRoundTrip(new PauseInForce("pause", "pg:a:1", true, true, Node), AdminJson.Default.PauseInForce);
        AssertRoundTrip(new PauseNotInForce("pause", "pg:a:1", true, false, "e"), AdminJson.Default.PauseNotInForce);
        AssertRoundTrip(new MemberActionResult("down", Node, true), AdminJson.Default.MemberActionResult);
        AssertRoundTrip(new LogLevelResult("warn", "info"), AdminJson.Default.LogLevelResult);
        AssertRoundTrip(new AdminError("x"), AdminJson.Default.AdminError);

        var read = JsonSerializer.Deserialize(
            JsonSerializer.Serialize(DeadLetters, AdminJson.Default.DeadLettersInfo), AdminJson.Default.DeadLettersInfo)!;
        Assert.Equal([PartitionSource.Postgresql, PartitionSource.Kafka], read.Consumers.Select(c => c.Source));
        Assert.Equal(9, Assert.IsType<KafkaDeadLetterSet>(read.Consumers[1]).Items[0].SourceOffset);
    }

    [Fact]
    public void A_dead_letter_set_is_read_as_its_source_wherever_the_source_is_written()
    {
        var read = JsonSerializer.Deserialize("""
            {"consumers":[{"consumer":"k","table":"t.dead_letter","total":1,"items":[{"consumer":"k","dead_letter_topic":"t.dead_letter",
            "dead_letter_partition":0,"dead_letter_offset":0,"source_topic":null,"source_partition":null,"source_offset":null,"reason":null,"replayed":true}],"source":"kafka"}]}
            """, AdminJson.Default.DeadLettersInfo)!;

        var kafka = Assert.IsType<KafkaDeadLetterSet>(Assert.Single(read.Consumers));
        Assert.True(Assert.Single(kafka.Items).Replayed);
        Assert.Throws<JsonException>(() =>
            JsonSerializer.Deserialize("""{"consumers":[{"consumer":"k","items":[]}]}""", AdminJson.Default.DeadLettersInfo));
    }

    [Fact]
    public void Requests_send_the_query_the_endpoint_binds()
    {
        Assert.Equal("?scope=cluster", PartitionsRequest.ClusterWide.Query);
        Assert.True(new PartitionsRequest("cluster").IsClusterWide);
        Assert.False(new PartitionsRequest(null).IsClusterWide);
        Assert.Equal("", new MemberRequest(null).Query);
        Assert.Equal("?address=akka.tcp%3A%2F%2Fs%40h%3A1", new MemberRequest("akka.tcp://s@h:1").Query);
        Assert.Equal("?id=kafka%3Ak%3Aorders.v2%3A3", new PartitionRequest("kafka:k:orders.v2:3").Query);
        Assert.Equal("?limit=10&consumer=pg_a", DeadLettersRequest.Of("pg_a", 10).Query);
        Assert.Equal("?limit=50", DeadLettersRequest.Of(null, 50).Query);
        Assert.Equal("?consumer=pg_a&ids=3,1", ReplayRequest.Of("pg_a", [3, 1], all: false).Query);
        Assert.Equal("?consumer=pg_a&all=true", ReplayRequest.Of("pg_a", [], all: true).Query);
        Assert.True(ReplayRequest.Of("pg_a", [], all: true).IsAll);
    }

    [Theory]
    [InlineData(null, DeadLettersRequest.DefaultLimit)]
    [InlineData("abc", DeadLettersRequest.DefaultLimit)]
    [InlineData("0", DeadLettersRequest.DefaultLimit)]
    [InlineData("-5", DeadLettersRequest.DefaultLimit)]
    [InlineData("7", 7)]
    [InlineData("99999", DeadLettersRequest.MaxLimit)]
    public void A_dead_letter_limit_is_clamped_or_defaulted(string? limit, int expected) =>
        Assert.Equal(expected, new DeadLettersRequest(null, limit).LimitOrDefault());

    private static ClusterInfo Cluster() => new(Node, null, Node, [new ClusterMember(Node, "Up", ["partitions-pg-pg_w"], "actors-0")], []);

    private static ShardsInfo Shards() => new([new ShardNode(Node, 1, 1, ["pg:pg_w:0"], [])]);

    private static void AssertRoundTrip<T>(T value, JsonTypeInfo<T> type)
    {
        var written = JsonSerializer.Serialize(value, type);
        Assert.Equal(written, JsonSerializer.Serialize(JsonSerializer.Deserialize(written, type)!, type));
    }
}
