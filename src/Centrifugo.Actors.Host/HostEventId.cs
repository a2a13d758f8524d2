namespace Centrifugo.Actors.Host;

/// <summary>The event ids of the host's own messages (bands in <see cref="LogEvents"/>).</summary>
internal static class HostEventId
{
    // 1000-1099: host: start, stop
    public const int ConfigurationError = 1001;
    public const int CannotStart = 1002;
    public const int Downed = 1003;

    // 1200-1299: admin actions
    public const int AdminAction = 1201;
    public const int AdminActionRefused = 1202;
}
