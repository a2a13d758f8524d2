using Microsoft.Extensions.Logging;

namespace Centrifugo.Actors.Hosting;

/// <summary>
/// The log messages of Hosting/ (start-up hints, cluster formation, the PostgreSQL failure detector, Akka's own
/// lines). Ids are named in <see cref="HostingEventId"/>; the logger (and so the category) is the caller's.
/// </summary>
internal static partial class HostingLog
{
    [LoggerMessage(EventId = HostingEventId.SplitReads, Level = LogLevel.Information,
        Message = "Consumer {Consumer}: {Setting} {ReadSize} is larger than api.max_batch_size {MaxBatchSize}, " +
            "so a full read goes to Centrifugo as {Requests} sequential /batch requests; " +
            "api.max_batch_size {Suggested} would send it as one (docs/configuration.md)")]
    public static partial void SplitReads(
        ILogger logger, string consumer, string setting, int readSize, int maxBatchSize, int requests, int suggested);

    [LoggerMessage(EventId = HostingEventId.DiscoveryWaiting, Level = LogLevel.Information,
        Message = "Cluster discovery: {Count} peer(s) found (a new cluster needs {Required}), waiting for the same answer twice: {Peers}")]
    public static partial void DiscoveryWaiting(ILogger logger, int count, int required, string peers);

    [LoggerMessage(EventId = HostingEventId.DiscoveryJoining, Level = LogLevel.Information,
        Message = "Cluster discovery: joining seed nodes {Peers} (self {Self}, may form a new cluster: {MayForm})")]
    public static partial void DiscoveryJoining(ILogger logger, string peers, string self, bool mayForm);

    [LoggerMessage(EventId = HostingEventId.DiscoveryLookupFailed, Level = LogLevel.Warning,
        Message = "Cluster discovery ({Method}) lookup failed, retrying: {Error}")]
    public static partial void DiscoveryLookupFailed(ILogger logger, string method, string error);

    [LoggerMessage(EventId = HostingEventId.LivenessLockHeld, Level = LogLevel.Information,
        Message = "PostgreSQL liveness: this node ({Self}) holds its liveness lock; members whose lock is released are downed at once")]
    public static partial void LivenessLockHeld(ILogger logger, string self);

    [LoggerMessage(EventId = HostingEventId.LivenessMemberReleased, Level = LogLevel.Warning,
        Message = "PostgreSQL liveness: the database session of {Member} ended (its liveness lock was released while it was {Status}): " +
            "downing it now")]
    public static partial void LivenessMemberReleased(ILogger logger, string member, string status);

    [LoggerMessage(EventId = HostingEventId.LivenessSessionLost, Level = LogLevel.Warning,
        Message = "PostgreSQL liveness: the session holding this node's lock failed, observing afresh after a new one: {Error}")]
    public static partial void LivenessSessionLost(ILogger logger, string error);

    [LoggerMessage(EventId = HostingEventId.AkkaMessage, Message = "{AkkaSource}: {AkkaMessage}")]
    public static partial void AkkaMessage(ILogger logger, LogLevel level, Exception? exception, string akkaSource, string akkaMessage);
}
