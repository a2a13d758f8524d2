namespace Centrifugo.Actors.Testing;
