using Akka.Actor;
using Microsoft.Extensions.Logging;

namespace Centrifugo.Actors.Partitions;

/// <summary>
/// An entity id this node has no configuration for (nodes run different configs during a rolling change): say so
/// once and hold the partition idle. Stopping by itself would not help: the region remembers its entities and would
/// restart it here, logging again every few seconds. A rebalance, or the node's restart with the new config, moves it
/// on; it stops on the hand-off message like every entity (ignoring it held the hand-off, and with it the node's
/// graceful shutdown, until Akka's hand-off timeout).
/// </summary>
internal sealed class UnknownPartitionActor : ReceiveActor
{
    public UnknownPartitionActor(string entityId, ILogger logger)
    {
        PartitionsLog.UnknownPartition(logger, entityId);
        Receive<StopPartition>(_ => Context.Stop(Self));
        ReceiveAny(_ => { });
    }

    public static Props Props(string entityId, ILogger logger) =>
        Akka.Actor.Props.Create(() => new UnknownPartitionActor(entityId, logger));
}
