using Microsoft.Extensions.Logging;

namespace Centrifugo.Actors.Partitions;

/// <summary>
/// The log messages of Partitions/ (the partition entities). Ids are named in <see cref="PartitionsEventId"/>; the
/// logger (and so the category) is the caller's.
/// </summary>
internal static partial class PartitionsLog
{
    [LoggerMessage(EventId = PartitionsEventId.UnknownPartition, Level = LogLevel.Warning,
        Message = "Partition {EntityId} is not in this node's configuration; not consuming it here")]
    public static partial void UnknownPartition(ILogger logger, string entityId);

    [LoggerMessage(EventId = PartitionsEventId.LoopFailed, Level = LogLevel.Error,
        Message = "Partition {EntityId}: its loop failed unexpectedly; it is read again from its last settled position")]
    public static partial void LoopFailed(ILogger logger, string entityId, Exception exception);

    [LoggerMessage(EventId = PartitionsEventId.OpenFailed, Level = LogLevel.Warning,
        Message = "Partition {EntityId} could not be opened here, retrying: {Reason}")]
    public static partial void OpenFailed(ILogger logger, string entityId, string reason);
}
