using Microsoft.Extensions.Logging;

namespace Centrifugo.Actors.Delivery;

/// <summary>
/// The log messages of Delivery/ (delivery to Centrifugo's HTTP API). Ids are named in <see cref="DeliveryEventId"/>;
/// the logger (and so the category) is the caller's.
/// </summary>
internal static partial class DeliveryLog
{
    [LoggerMessage(EventId = DeliveryEventId.Isolating, Level = LogLevel.Warning,
        Message = "Centrifugo refused a batch of {Count} commands as a whole ({Reason}); sending them one by one to isolate the bad one")]
    public static partial void Isolating(ILogger logger, int count, string reason);

    [LoggerMessage(EventId = DeliveryEventId.CommandRejected, Level = LogLevel.Debug,
        Message = "Centrifugo rejected a {Method} command: {Reason}")]
    public static partial void CommandRejected(ILogger logger, string method, string reason);

    [LoggerMessage(EventId = DeliveryEventId.ApiMisconfigured, Level = LogLevel.Error,
        Message = "Centrifugo server API is misconfigured: {Reason}")]
    public static partial void ApiMisconfigured(ILogger logger, string reason);

    [LoggerMessage(EventId = DeliveryEventId.TemporaryFailure, Level = LogLevel.Debug,
        Message = "Temporary failure delivering {Method}: {Reason}")]
    public static partial void TemporaryFailure(ILogger logger, string method, string reason);
}
