namespace Centrifugo.Actors.Configuration;

/// <summary>The consumer group protocol a node's member speaks (a kafka consumer's <c>group_protocol</c>).</summary>
internal enum KafkaGroupProtocol
{
    /// <summary>The classic protocol with the cooperative-sticky assignor (every broker; what Centrifugo's consumer speaks).</summary>
    Classic,

    /// <summary>KIP-848 (<c>group.protocol=consumer</c>): incremental, driven by the broker (Kafka 4.0 and later).</summary>
    Consumer,
}
