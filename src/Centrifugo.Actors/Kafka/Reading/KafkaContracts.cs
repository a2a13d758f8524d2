namespace Centrifugo.Actors.Kafka;

/// <summary>One consumed Kafka record handed to a partition entity.</summary>
internal sealed record KafkaRecord(
    string Topic,
    int Partition,
    long Offset,
    byte[]? Key,
    byte[]? Value,
    IReadOnlyList<KeyValuePair<string, byte[]>> Headers);
