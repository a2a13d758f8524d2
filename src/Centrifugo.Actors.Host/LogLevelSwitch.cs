using Microsoft.Extensions.Logging;

namespace Centrifugo.Actors.Host;

/// <summary>
/// The node's minimum log level, changed at run time by <c>POST /log/level</c> without a restart. The logger factory
/// consults it on every <see cref="ILogger.IsEnabled"/> (the categories muted by a rule of their own stay muted).
/// </summary>
internal sealed class LogLevelSwitch(LogLevel level)
{
    private volatile int _level = (int)level;

    public LogLevel Level
    {
        get => (LogLevel)_level;
        set => _level = (int)value;
    }
}
