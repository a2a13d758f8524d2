using Centrifugo.Actors.Partitions;

namespace Centrifugo.Actors.Tests.Sharding;

/// <summary>Entity ids and the shard region's extractor: every partition is its own shard, named by its entity id.</summary>
[Trait(TestLane.Category, TestLane.Fast)]
public sealed class PartitionEntityIdTests
{
    [Fact]
    public void An_outbox_entity_id_round_trips()
    {
        var id = PartitionEntityId.Outbox("pg_main", 7);

        Assert.Equal("pg:pg_main:7", id);
        Assert.True(PartitionEntityId.TryParseOutbox(id, out var consumer, out var partition));
        Assert.Equal(("pg_main", 7), (consumer, partition));
        Assert.False(PartitionEntityId.TryParseKafka(id, out _, out _, out _));
    }

    [Fact]
    public void A_kafka_entity_id_round_trips_with_dots_and_dashes_in_the_topic()
    {
        var id = PartitionEntityId.Kafka("k1", "orders.v2-eu", 11);

        Assert.Equal("kafka:k1:orders.v2-eu:11", id);
        Assert.True(PartitionEntityId.TryParseKafka(id, out var consumer, out var topic, out var partition));
        Assert.Equal(("k1", "orders.v2-eu", 11), (consumer, topic, partition));
        Assert.False(PartitionEntityId.TryParseOutbox(id, out _, out _));
    }

    [Theory]
    [InlineData("")]
    [InlineData("pg")]
    [InlineData("pg:main")]
    [InlineData("pg:main:x")]
    [InlineData("pg:main:1:2")]
    [InlineData("kafka:main:1")]
    [InlineData("PG:main:1")]
    [InlineData("pg:main:99999999999")]
    public void Malformed_ids_are_not_outbox_partitions(string id)
    {
        Assert.False(PartitionEntityId.TryParseOutbox(id, out var consumer, out _));
        Assert.Equal("", consumer);
    }

    [Theory]
    [InlineData("kafka:k:t")]
    [InlineData("kafka:k:t:p")]
    [InlineData("kafka:k:t:1:2")]
    [InlineData("pg:k:t:1")]
    public void Malformed_ids_are_not_kafka_partitions(string id) =>
        Assert.False(PartitionEntityId.TryParseKafka(id, out _, out _, out _));

    [Theory]
    [InlineData("pg:pg_main:7", false, "pg_main", "7")]
    [InlineData("kafka:k1:orders.v2-eu:11", true, "k1", "orders.v2-eu/11")]
    public void An_id_names_its_source_consumer_and_partition_as_the_status_shows_them(
        string id, bool kafka, string consumer, string partition)
    {
        Assert.True(PartitionEntityId.TryParse(id, out var s, out var c, out var p));
        Assert.Equal((kafka ? PartitionSource.Kafka : PartitionSource.Postgresql, consumer, partition), (s, c, p));
    }

    [Theory]
    [InlineData("")]
    [InlineData("pg:main:x")]
    [InlineData("kafka:k:t")]
    [InlineData("other:k:1")]
    public void A_malformed_id_names_no_partition(string id)
    {
        Assert.False(PartitionEntityId.TryParse(id, out _, out var consumer, out var partition));
        Assert.Equal(("", ""), (consumer, partition));
    }

    [Theory]
    [InlineData("pg:main:12", "pg:main")]
    [InlineData("kafka:events:orders.v2:3", "kafka:events")]
    [InlineData("pg", "pg")]
    [InlineData("pg:main", "pg:main")]
    public void The_consumer_key_is_the_id_up_to_its_consumer(string id, string key)
    {
        Assert.Equal(key, PartitionEntityId.ConsumerKey(id));
        if (PartitionEntityId.TryParse(id, out var source, out var consumer, out _))
        {
            Assert.Equal(
                (source == PartitionSource.Kafka ? PartitionEntityId.KafkaPrefix : PartitionEntityId.OutboxPrefix) + ":" + consumer, key);
        }
    }

    [Fact]
    public void Every_partition_message_is_routed_to_the_shard_named_by_its_entity_id()
    {
        var extractor = PartitionMessageExtractor.Instance;
        object[] messages =
        [
            new EnsurePartitionRunning("pg:a:1"), new WakePartition("pg:a:1"), new GetPartitionStatus("pg:a:1"),
        ];

        foreach (var message in messages)
        {
            Assert.Equal("pg:a:1", extractor.EntityId(message));
            Assert.Equal("pg:a:1", extractor.ShardId(message));
            Assert.Same(message, extractor.EntityMessage(message));
        }
        Assert.Equal("kafka:k:t:3", extractor.ShardId("kafka:k:t:3"));
    }

    [Fact]
    public void Other_messages_are_not_routed()
    {
        Assert.Null(PartitionMessageExtractor.Instance.EntityId("hello"));
        Assert.Null(PartitionMessageExtractor.Instance.ShardId(StopPartition.Instance));
    }
}
